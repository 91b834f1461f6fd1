"""Touchpoints for many leads at once (the API's ingest): each item is what `touchpoint_record`
records, answered on its own (recorded, or an error that records nothing), set-based: one
locking read of the leads, one INSERT of the touchpoints, the events in one go, the scores in
Python per touchpoint in request order (leads.importing.scoring) and written in one UPDATE.

A lead that crosses into MQL moves (and is routed) before its later touchpoints of the same
request are recorded, as one call after another would have it: those wait for a second round."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import Role, User
from alignment.permissions import Action, can, require
from leads.events import NewEvent, events_record_bulk
from leads.importing.rowsql import Blank, rows_insert, rows_update
from leads.importing.scoring import SCORE_ATTNAMES, BatchScorer, Scored, TouchpointRow
from leads.importing.upsert import (
    ERROR,
    MAX_ID,
    ItemResult,
    check_items,
    has_nul,
    item_error,
    leads_locked,
    leads_upsert_bulk,
)
from leads.intake import touchpoint_names_content
from leads.lifecycle import qualify_if_crossing
from leads.models import (
    FIRST_TOUCH_KINDS,
    LOGGED_TOUCHPOINT_KINDS,
    SALES_TOUCHPOINT_KINDS,
    SHARE_ONLY_MESSAGE,
    Campaign,
    EventType,
    Lead,
    Source,
    Touchpoint,
    TouchpointKind,
    normalise_email,
)

RECORDED = "recorded"
ITEM_FIELDS = frozenset(
    {"lead_id", "external_id", "email", "kind", "occurred_at", "campaign", "metadata"}
)
# touchpoint_record's tolerance for a clock a little ahead of ours
FUTURE_TOLERANCE = timedelta(minutes=5)
_LOCKED_FIELDS = (
    "id",
    "email",
    "external_id",
    "first_name",
    "last_name",
    "stage",
    "owner_id",
    "source_id",
    "mql_at",
    "mql_count",
    "first_sales_touch_at",
    *SCORE_ATTNAMES,
)
_LOCKED_ATTNAMES = tuple(Lead._meta.get_field(name).attname for name in _LOCKED_FIELDS)
_KINDS = frozenset(LOGGED_TOUCHPOINT_KINDS)
_new_touchpoint = Blank(Touchpoint)


@dataclass(slots=True)
class _Item:
    index: int
    lead_id: int | None
    external_id: str | None
    email: str | None
    kind: str
    occurred_at: datetime
    campaign: int | str | None
    metadata: dict


def _parse(index: int, item: dict, *, by: User | None, now: datetime) -> _Item:
    unknown = sorted(str(k) for k in set(item) - ITEM_FIELDS)
    if unknown:
        raise DomainError("Unknown field.", field=unknown[0])
    for key, value in item.items():
        if has_nul(value):
            raise DomainError("Text cannot contain a NUL character.", field=key)
    lead_id = item.get("lead_id")
    if lead_id is not None and (isinstance(lead_id, bool) or not isinstance(lead_id, int)):
        raise DomainError("A lead id is a whole number.", field="lead_id")
    if lead_id is not None and not 0 < lead_id <= MAX_ID:
        raise DomainError(f"There is no lead {lead_id}.", field="lead_id")
    external_id = item.get("external_id")
    if external_id is not None and not isinstance(external_id, str | int):
        raise DomainError("Must be a string.", field="external_id")
    external_id = str(external_id).strip() or None if external_id is not None else None
    email = item.get("email")
    if email is not None and not isinstance(email, str):
        raise DomainError("Must be a string.", field="email")
    email = normalise_email(email)
    if lead_id is None and external_id is None and email is None:
        raise DomainError("Name the lead by lead_id, external_id or email.", field="lead_id")
    kind = item.get("kind")
    if kind == TouchpointKind.CONTENT_SHARED:
        raise DomainError(SHARE_ONLY_MESSAGE, field="kind")
    if kind not in _KINDS:
        raise DomainError(f"Unknown touchpoint kind {kind!r}.", field="kind")
    if kind in SALES_TOUCHPOINT_KINDS:
        if by is None:
            raise DomainError(
                "Sales touchpoints need a person: use a key that acts as a sales rep or a "
                "sales manager.",
                field="kind",
            )
        try:
            require(by, Action.TOUCHPOINT_SALES)
        except PermissionDenied as error:
            raise DomainError(error.message, field="kind") from None
    elif by is not None:
        try:
            require(by, Action.TOUCHPOINT_MARKETING)
        except PermissionDenied as error:
            raise DomainError(error.message, field="kind") from None
    text = item.get("occurred_at")
    occurred_at = parse_datetime(text) if isinstance(text, str) else None
    if occurred_at is None:
        raise DomainError(
            "An ISO 8601 time with its offset, e.g. 2026-03-02T09:30:00+01:00.",
            field="occurred_at",
        )
    if timezone.is_naive(occurred_at):
        raise DomainError(
            "Give the time with its offset (Z or +01:00): a time without one is ambiguous.",
            field="occurred_at",
        )
    try:
        future = occurred_at > now + FUTURE_TOLERANCE
        occurred_at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise DomainError("The time is out of range.", field="occurred_at") from None
    if future:
        raise DomainError("A touchpoint cannot happen in the future.", field="occurred_at")
    campaign = item.get("campaign")
    if campaign is not None and (isinstance(campaign, bool) or not isinstance(campaign, int | str)):
        raise DomainError("A campaign id or its utm_campaign.", field="campaign")
    if isinstance(campaign, int) and not 0 < campaign <= MAX_ID:
        raise DomainError(f"There is no campaign with id {campaign}.", field="campaign")
    if isinstance(campaign, str):
        campaign = campaign.strip() or None
    if external_id is not None and len(external_id) > 128:
        raise DomainError("At most 128 characters.", field="external_id")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DomainError("Metadata is an object of key/value pairs.", field="metadata")
    return _Item(index, lead_id, external_id, email, kind, occurred_at, campaign, dict(metadata))


class _Campaigns:
    """The campaigns the touchpoints name (by id or utm_campaign), and those their metadata's
    utm_campaign links to (campaign_for_utm), read in one query."""

    def __init__(self, items: list[_Item]):
        ids, utms = set(), set()
        for it in items:
            if isinstance(it.campaign, int):
                ids.add(it.campaign)
            elif isinstance(it.campaign, str):
                utms.add(it.campaign.lower())
            elif isinstance(it.metadata.get("utm_campaign"), str):
                utms.add(it.metadata["utm_campaign"].strip().lower())
        self.rows: list[Campaign] = []
        if ids or utms:
            self.rows = list(
                Campaign.objects.annotate(utm_lower=Lower("utm_campaign")).filter(
                    Q(pk__in=ids) | Q(utm_lower__in=utms)
                )
            )

    def of(self, it: _Item) -> int | None:
        if isinstance(it.campaign, int):
            found = next((c for c in self.rows if c.pk == it.campaign), None)
            if found is None:
                raise DomainError(f"There is no campaign with id {it.campaign}.", field="campaign")
            return found.pk
        wanted = it.campaign or it.metadata.get("utm_campaign")
        if not isinstance(wanted, str) or not wanted.strip():
            return None
        wanted = wanted.strip().lower()
        found = next((c for c in self.rows if c.utm_campaign.lower() == wanted), None)
        if found is None and it.campaign is not None:
            raise DomainError(
                f"There is no campaign with utm_campaign {it.campaign!r}.", field="campaign"
            )
        return found.pk if found else None


def _lock(items: list[_Item], *, ids: set[int] = frozenset()) -> dict[str, dict]:
    """Lock the leads the items (or `ids`) name, in id order; maps by id, external id and
    email."""
    leads = leads_locked(
        _LOCKED_ATTNAMES,
        ids={*ids, *(it.lead_id for it in items if it.lead_id is not None)},
        external_ids=(it.external_id for it in items if it.external_id),
        emails=(it.email for it in items if it.email),
    )
    return {
        "id": {lead.pk: lead for lead in leads},
        "external_id": {lead.external_id: lead for lead in leads if lead.external_id},
        "email": {lead.email: lead for lead in leads if lead.email},
    }


def _find(it: _Item, found: dict[str, dict]) -> Lead | None:
    """The item's lead: by id, else by external id, then email (as intake matches)."""
    if it.lead_id is not None:
        return found["id"].get(it.lead_id)
    lead = found["external_id"].get(it.external_id) if it.external_id else None
    if lead is None and it.email:
        lead = found["email"].get(it.email)
    return lead


@dataclass(slots=True)
class _Recorded:
    index: int
    touchpoint: Touchpoint
    first_touch: bool
    scored: Scored | None


def _round(
    pending: list[tuple[_Item, int]],
    *,
    locked: dict[int, Lead],
    campaign_ids: dict[int, int | None],
    by: User | None,
    system: str,
    now: datetime,
    results: dict[int, ItemResult],
) -> list[tuple[_Item, int]]:
    """Record the touchpoints of `pending` (item, lead id) in order, up to each lead's first
    crossing into MQL; returns the items left for after the moves."""
    scorer = BatchScorer(now=now)
    model = scorer.model
    # leads scored by another version (or never) are scored from all their touchpoints
    whole_ids = {
        lead_id
        for _, lead_id in pending
        if scorer.needs_touchpoints(locked[lead_id], refresh=False)
    }
    wholes: dict[int, Lead] = {}
    source_keys: dict[int, str] = {}
    rows: dict[int, list[TouchpointRow]] = {pk: [] for pk in whole_ids}
    if whole_ids and model is not None:
        wholes = {lead.pk: lead for lead in Lead.objects.filter(pk__in=whole_ids)}
        source_ids = {lead.source_id for lead in wholes.values() if lead.source_id}
        if model.uses_source and source_ids:
            source_keys = dict(Source.objects.filter(pk__in=source_ids).values_list("pk", "key"))
        if model.kinds:
            for lead_id, *row in (
                Touchpoint.objects.filter(lead_id__in=whole_ids, kind__in=model.kinds)
                .order_by()
                .values_list("lead_id", "kind", "campaign_id", "metadata", "occurred_at")
            ):
                rows[lead_id].append(tuple(row))

    recorded: list[_Recorded] = []
    later: list[tuple[_Item, int]] = []
    crossed: set[int] = set()
    stamped: set[int] = set()
    for it, lead_id in pending:
        lead = locked[lead_id]
        if lead_id in crossed:
            later.append((it, lead_id))
            continue
        is_sales = it.kind in SALES_TOUCHPOINT_KINDS
        # a rep works their own queue: their calls on it are what the SLA clock measures
        if (
            is_sales
            and by is not None
            and by.effective_role == Role.SALES_REP
            and lead.owner_id != by.pk
        ):
            results[it.index] = item_error(
                it.index,
                DomainError(
                    f"{lead.display_name} is not assigned to you; only its owner or a sales "
                    "manager can log sales activity on it."
                ),
            )
            continue
        touchpoint = _new_touchpoint(
            lead_id=lead_id,
            kind=it.kind,
            occurred_at=it.occurred_at,
            campaign_id=campaign_ids[it.index],
            metadata=it.metadata,
            created_by_id=by.pk if by is not None else None,
            created_at=now,
        )
        first_touch = (
            it.kind in FIRST_TOUCH_KINDS
            and lead.mql_at is not None
            and it.occurred_at >= lead.mql_at
            and lead.first_sales_touch_at is None
        )
        if first_touch:
            lead.first_sales_touch_at = it.occurred_at
            stamped.add(lead_id)
        row = (it.kind, touchpoint.campaign_id, it.metadata, it.occurred_at)
        if lead_id in rows:
            rows[lead_id].append(row)
        whole = wholes.get(lead_id)
        scored = scorer.touchpoint(
            lead,
            row,
            whole=whole,
            source_key=source_keys.get(whole.source_id) if whole else None,
            touchpoints=rows.get(lead_id, ()),
        )
        if scored is not None and scored.update.crosses:
            crossed.add(lead_id)
        recorded.append(_Recorded(it.index, touchpoint, first_touch, scored))

    rows_insert(objs=[r.touchpoint for r in recorded])
    events: list[NewEvent] = []
    for r in recorded:
        tp = r.touchpoint
        events.append(
            NewEvent(
                type=EventType.TOUCHPOINT_RECORDED,
                lead_id=tp.lead_id,
                occurred_at=tp.occurred_at,
                payload={
                    "touchpoint_id": tp.pk,
                    "kind": tp.kind,
                    "campaign_id": tp.campaign_id,
                    "sales": tp.kind in SALES_TOUCHPOINT_KINDS,
                    **({"first_sales_touch": True} if r.first_touch else {}),
                    **({"content": True} if touchpoint_names_content(tp.kind, tp.metadata) else {}),
                },
                actor_id=by.pk if by is not None else None,
                system=system,
            )
        )
        if r.scored is not None and r.scored.event is not None:
            events.append(r.scored.event)
        results[r.index] = ItemResult(r.index, RECORDED, tp.lead_id)
    events_record_bulk(events)
    dirty = sorted(scorer.written | stamped)
    attnames = (*SCORE_ATTNAMES, "first_sales_touch_at")
    values = attrgetter("pk", *attnames)
    rows_update(model=Lead, attnames=attnames, rows=[values(locked[pk]) for pk in dirty])
    for r in recorded:
        if r.scored is not None and r.scored.update.crosses:
            qualify_if_crossing(lead=r.scored.update.lead, update=r.scored.update)
    return later


def _create_unknown(
    unknown: list[_Item], *, by: User | None, system: str, results: dict[int, ItemResult]
) -> None:
    """Create the leads named only by email or external id that do not exist yet, through the
    bulk intake (one lead per key, however many touchpoints name it)."""
    firsts: dict[tuple, _Item] = {}
    for it in unknown:
        firsts.setdefault((it.external_id, it.email), it)
    data = [
        {k: v for k, v in (("email", it.email), ("external_id", it.external_id)) if v}
        for it in firsts.values()
    ]
    created = leads_upsert_bulk(items=data, by=by, system=system)
    outcome = dict(zip(firsts, created, strict=True))
    for it in unknown:
        answer = outcome[(it.external_id, it.email)]
        if answer.result == ERROR:
            results[it.index] = ItemResult(it.index, ERROR, errors=answer.errors)


@transaction.atomic
def touchpoints_record_bulk(
    *, items: list[Any], by: User | None = None, system: str = "", create_unknown: bool = False
) -> list[ItemResult]:
    """Record up to MAX_ITEMS touchpoints, each as touchpoint_record would (scored at once, its
    touchpoint.recorded event, the first sales touch after an MQL stamped, an MQL when the lead
    now crosses the definition). A lead named by email or external id that does not exist is an
    error, or created first with `create_unknown`. Sales kinds need a person (`by`) allowed to
    log them. Returns one answer per item, in order ("recorded" with the lead id, or "error")."""
    if by is not None:
        if not (can(by, Action.TOUCHPOINT_MARKETING) or can(by, Action.TOUCHPOINT_SALES)):
            require(by, Action.TOUCHPOINT_MARKETING)
    elif not system:
        raise DomainError("A touchpoint needs a person or a named system.")
    check_items(items, name="touchpoints")
    now = timezone.now()
    results: dict[int, ItemResult] = {}
    parsed: list[_Item] = []
    for index, item in enumerate(items):
        try:
            parsed.append(_parse(index, item, by=by, now=now))
        except DomainError as error:
            results[index] = item_error(index, error)
    campaigns = _Campaigns(parsed)
    campaign_ids: dict[int, int | None] = {}
    ready: list[_Item] = []
    for it in parsed:
        try:
            campaign_ids[it.index] = campaigns.of(it)
        except DomainError as error:
            results[it.index] = item_error(it.index, error)
            continue
        ready.append(it)

    found = _lock(ready)
    missing = [it for it in ready if _find(it, found) is None]
    if missing and create_unknown:
        by_key = [it for it in missing if it.lead_id is None]
        _create_unknown(by_key, by=by, system=system, results=results)
        found = _lock([it for it in ready if it.index not in results])
    pending: list[tuple[_Item, int]] = []
    for it in ready:
        if it.index in results:
            continue
        lead = _find(it, found)
        if lead is None:
            named = f"id {it.lead_id}" if it.lead_id is not None else (it.external_id or it.email)
            field = (
                "lead_id"
                if it.lead_id is not None
                else ("external_id" if it.external_id else "email")
            )
            hint = "" if it.lead_id is not None else ' (send "create_unknown": true to create it)'
            results[it.index] = item_error(
                it.index, DomainError(f"There is no lead {named}{hint}.", field=field)
            )
            continue
        pending.append((it, lead.pk))
    locked = found["id"]
    while pending:
        pending = _round(
            pending,
            locked=locked,
            campaign_ids=campaign_ids,
            by=by,
            system=system,
            now=now,
            results=results,
        )
        if pending:
            # the moves changed these leads: read them again, still locked
            locked = _lock([], ids={lead_id for _, lead_id in pending})["id"]
    return [results[index] for index in range(len(items))]
