"""Keeping the stage stays in step with the event log.

- After commit, the outbox reaction `stays_reaction` (settings.OUTBOX_REACTIONS: on
  `lead.created` and `lead.stage_changed`, and on `lead.updated` of the source or campaign,
  `lead.assigned` and `lead.merged`, which change the lead's source, campaign or owner that
  every row carries for the filters) rewrites the stays of the event's lead from all its
  events: the rows are what the replay says, however often or in whatever order it runs.
- Both the reaction and the rebuild lock the leads' rows first, in id order, so a lead's rows
  are never rewritten by two of them at once (no duplicates, no deadlock).
- History written without reactions (the demo seed's years, an import's outcomes) and any drift
  are put right by `manage.py kpis_rebuild`, which rewrites every lead's rows in batches of lead
  ids (`stays_rebuild`); `stays_verify` lists the leads whose rows differ from the replay.

Decision: a touchpoint recorded after the lead's move into opportunity, but dated before it, does
not rewrite the stays (ten million touchpoints must not each queue a rollup); the next lifecycle
event of the lead or a rebuild credits it.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator

from django.db import connection, transaction
from django.db.models import Max, Min

from alignment.lib.copy import copy_rows
from kpis.models import StageStay
from kpis.rollups.replay import CREDITED, Event, Stay, Touch, replay
from leads.models import EventType, Lead, LeadEvent, Touchpoint

REPLAYED_TYPES = (EventType.LEAD_CREATED, EventType.LEAD_STAGE_CHANGED)
REBUILD_BATCH = 20_000


def _events_of(**lead_filter) -> dict[int, list[Event]]:
    found: dict[int, list[Event]] = defaultdict(list)
    rows = (
        LeadEvent.objects.filter(type__in=REPLAYED_TYPES, **lead_filter)
        .values_list("lead_id", "id", "type", "occurred_at", "payload")
        .iterator(chunk_size=10_000)
    )
    for lead_id, pk, type_, at, payload in rows:
        found[lead_id].append(Event(pk, type_, at, payload))
    return found


def _touches_of(lead_ids: list[int]) -> dict[int, list[Touch]]:
    found: dict[int, list[Touch]] = defaultdict(list)
    rows = (
        Touchpoint.objects.filter(lead_id__in=lead_ids, campaign_id__isnull=False)
        .order_by("lead_id", "occurred_at", "id")
        .values_list("lead_id", "occurred_at", "id", "campaign_id")
        .iterator(chunk_size=10_000)
    )
    for lead_id, at, pk, campaign_id in rows:
        found[lead_id].append(Touch(at, pk, campaign_id))
    return found


def _needs_touches(events: list[Event]) -> bool:
    return any(
        e.type == EventType.LEAD_STAGE_CHANGED
        and isinstance(e.payload, dict)
        and e.payload.get("to") in CREDITED
        for e in events
    )


def _rows(lead_ids: list[int], events: dict[int, list[Event]] | None = None) -> Iterator[StageStay]:
    """The stays of these leads (their events fetched unless given), with each lead's current
    source, campaign and owner (a merged duplicate keeps none)."""
    if events is None:
        events = _events_of(lead_id__in=lead_ids)
    credited = [lead_id for lead_id, evs in events.items() if _needs_touches(evs)]
    touches = _touches_of(credited) if credited else {}
    current = {
        pk: (source_id, campaign_id, owner_id)
        for pk, source_id, campaign_id, owner_id in Lead.objects.filter(
            pk__in=lead_ids
        ).values_list("pk", "source_id", "campaign_id", "owner_id")
    }
    for lead_id in lead_ids:
        created_at, stays = replay(events.get(lead_id, ()), touches.get(lead_id, ()))
        for stay in stays:
            yield _row(lead_id, created_at, current.get(lead_id, NO_LEAD), stay)


NO_LEAD = (None, None, None)


def _row(lead_id: int, created_at, lead: tuple, stay: Stay) -> StageStay:
    source_id, campaign_id, owner_id = lead
    return StageStay(
        lead_id=lead_id,
        lead_created_at=created_at,
        source_id=source_id,
        campaign_id=campaign_id,
        owner_id=owner_id,
        furthest=stay.furthest,
        stage=stay.stage,
        from_stage=stay.from_stage,
        entered_at=stay.entered_at,
        left_at=stay.left_at,
        exit_to=stay.exit_to,
        exit_reason=stay.exit_reason,
        deal_value=stay.deal_value,
        mql_at=stay.mql_at,
        opened_at=stay.opened_at,
        first_campaign_id=stay.first_campaign_id,
        last_campaign_id=stay.last_campaign_id,
    )


# the columns COPY writes (all but the id), in the model's order
_FIELDS = [f for f in StageStay._meta.concrete_fields if not f.primary_key]


def _write(rows: list[StageStay]) -> None:
    """Insert the rows: COPY on PostgreSQL (the rebuild writes millions), else bulk_create."""
    if connection.vendor != "postgresql" or len(rows) < 100:
        StageStay.objects.bulk_create(rows, batch_size=5_000)
        return
    copy_rows(
        StageStay._meta.db_table,
        [f.column for f in _FIELDS],
        ([getattr(row, f.attname) for f in _FIELDS] for row in rows),
    )


def _lock(leads) -> None:
    """Lock these lead rows until the transaction ends, in id order."""
    list(leads.select_for_update().order_by("pk").values_list("pk", flat=True).iterator(10_000))


def stays_sync(lead_ids: Iterable[int]) -> int:
    """Rewrite the stays of these leads from their events; returns the rows written. The leads'
    rows are locked first (in id order), so two syncs of one lead never interleave."""
    ids = sorted(set(lead_ids))
    if not ids:
        return 0
    with transaction.atomic():
        _lock(Lead.objects.filter(pk__in=ids))
        StageStay.objects.filter(lead_id__in=ids).delete()
        rows = list(_rows(ids))
        _write(rows)
    return len(rows)


def stays_reaction(event: LeadEvent) -> None:
    """Outbox reaction: the event's lead's stays, rewritten from its events."""
    if event.lead_id is not None:
        stays_sync([event.lead_id])


def _id_batches(batch: int) -> Iterator[tuple[int, int]]:
    # min and max of leadevent_lead_time's first column: two index reads
    bounds = LeadEvent.objects.aggregate(low=Min("lead_id"), high=Max("lead_id"))
    low, high = bounds["low"], bounds["high"]
    if low is None:
        return
    for start in range(low, high + 1, batch):
        yield start, start + batch


def stays_rebuild(*, batch: int = REBUILD_BATCH) -> int:
    """Rewrite every lead's stays from the event log, a batch of lead ids per transaction;
    returns the rows written. Readers see a batch's old rows or its new ones, never none."""
    written = 0
    batches = list(_id_batches(batch))
    # rows of leads outside the event log's range (none should exist) go first
    outside = StageStay.objects.all()
    if batches:
        outside = outside.exclude(lead_id__gte=batches[0][0], lead_id__lt=batches[-1][1])
    outside.delete()
    for start, end in batches:
        with transaction.atomic():
            _lock(Lead.objects.filter(pk__gte=start, pk__lt=end))
            events = _events_of(lead_id__gte=start, lead_id__lt=end)
            StageStay.objects.filter(lead_id__gte=start, lead_id__lt=end).delete()
            rows = list(_rows(sorted(events), events))
            _write(rows)
        written += len(rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE kpis_stagestay")
    return written


def _key(row: StageStay) -> tuple:
    return (
        row.stage,
        row.from_stage,
        row.entered_at,
        row.left_at,
        row.exit_to,
        row.exit_reason,
        row.deal_value,
        row.lead_created_at,
        row.source_id,
        row.campaign_id,
        row.owner_id,
        row.furthest,
        row.mql_at,
        row.opened_at,
        row.first_campaign_id,
        row.last_campaign_id,
    )


def stays_verify(lead_ids: Iterable[int]) -> list[int]:
    """The leads (of these) whose stored stays differ from what their events replay to."""
    ids = sorted(set(lead_ids))
    stored: dict[int, list[tuple]] = defaultdict(list)
    for row in StageStay.objects.filter(lead_id__in=ids).order_by("entered_at", "id"):
        stored[row.lead_id].append(_key(row))
    wanted: dict[int, list[tuple]] = defaultdict(list)
    for row in _rows(ids):
        wanted[row.lead_id].append(_key(row))
    return [i for i in ids if sorted(stored[i], key=repr) != sorted(wanted[i], key=repr)]
