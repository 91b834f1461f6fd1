"""A small fixed lead history for the KPI tests: leads made with the factories, their creation
and moves written by the lead services (or, for what the lifecycle forbids, by event_record) at
explicit times."""

from datetime import UTC, datetime, timedelta

from kpis import selectors
from kpis.rollups.services import stays_rebuild, stays_sync
from leads.events import event_record, outbox_dispatch
from leads.lifecycle import lead_move
from leads.models import EventType, LeadEvent, Stage
from tests.factories import LeadFactory

TZ = "Europe/Berlin"
W46 = selectors.iso_week_period("2026-W46", tz=TZ)
W47 = selectors.iso_week_period("2026-W47", tz=TZ)
W48 = selectors.iso_week_period("2026-W48", tz=TZ)


def utc(month, day, hour, minute=0):
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def new_lead(at, **fields):
    lead = LeadFactory(created_at=at, stage_changed_at=at, **fields)
    event_record(
        type=EventType.LEAD_CREATED,
        lead=lead,
        system="test",
        at=at,
        payload={"email": lead.email, "external_id": None},
    )
    return lead


def move(lead, to, at, **kwargs):
    return lead_move(lead=lead, to=to, system="test", at=at, **kwargs)


def walk(lead, *steps):
    """Moves in order: (stage, at) or (stage, at, {kwargs})."""
    for step in steps:
        move(lead, step[0], step[1], **(step[2] if len(step) > 2 else {}))
    return lead


def imported_move(lead, frm, to, at, deal_value=None):
    """A move the lifecycle does not allow (an imported history): only its events."""
    payload = {
        "from": frm,
        "to": to,
        "reason": None,
        "note": "",
        "deal_value": str(deal_value) if deal_value is not None else None,
    }
    event_record(
        type=EventType.LEAD_STAGE_CHANGED, lead=lead, system="test", at=at, payload=payload
    )
    if to == Stage.WON:
        event_record(type=EventType.LEAD_WON, lead=lead, system="test", at=at, payload=payload)


def to_opportunity(lead, day, deal_value):
    """MQL, SAL, SQL and opportunity on one day, 08:00 to 11:00 UTC."""
    return walk(
        lead,
        (Stage.MQL, utc(11, day, 8)),
        (Stage.SAL, utc(11, day, 9)),
        (Stage.SQL, utc(11, day, 10)),
        (Stage.OPPORTUNITY, utc(11, day, 11), {"deal_value": deal_value}),
    )


def won_path(lead, start_day, deal_value, *, hours=24):
    """MQL on start_day 12:00 UTC, then SAL, SQL, opportunity, won every `hours` after."""
    at = utc(11, start_day, 12)
    step = hours
    return walk(
        lead,
        (Stage.MQL, at),
        (Stage.SAL, at + timedelta(hours=step)),
        (Stage.SQL, at + timedelta(hours=2 * step)),
        (Stage.OPPORTUNITY, at + timedelta(hours=3 * step), {"deal_value": deal_value}),
        (Stage.WON, at + timedelta(hours=4 * step)),
    )


def reads(queries) -> list[str]:
    """The SELECTs a CaptureQueriesContext saw (not the savepoints or the SET LOCAL jit)."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
    ]


def settle():
    """Run the outbox reactions of what was written, as the worker does after commit (the
    KPI rollup among them)."""
    while outbox_dispatch().done:
        pass


def rebuild():
    """The KPI rollup rewritten from the event log (events written straight into the log, as
    a hand-built history is, queue no reactions)."""
    stays_rebuild()


# --- histories written straight into the log (what the lifecycle would refuse, or faster) ---


def logged_event(lead, type, at, **payload):
    """An event written straight into the log, and the lead's KPI rollup rewritten from it (what
    the outbox reaction does after commit)."""
    written = LeadEvent.objects.create(
        lead=lead, type=type, occurred_at=at, payload=payload, system="test"
    )
    stays_sync([lead.pk])
    return written


def logged_move(lead, to, at, *, frm=None, reason=None, deal_value=None):
    """The events of one stage move: lead.stage_changed and the move's own type."""
    specific = {
        Stage.MQL: EventType.LEAD_MQL,
        Stage.SAL: EventType.LEAD_ACCEPTED,
        Stage.REJECTED: EventType.LEAD_REJECTED,
        Stage.RECYCLED: EventType.LEAD_RECYCLED,
        Stage.WON: EventType.LEAD_WON,
    }
    payload = {
        "from": frm,
        "to": to,
        "reason": reason,
        "deal_value": str(deal_value) if deal_value is not None else None,
    }
    logged_event(lead, EventType.LEAD_STAGE_CHANGED, at, **payload)
    if to in specific:
        logged_event(lead, specific[to], at, **payload)
