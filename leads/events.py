"""The append-only lead event log and its transactional outbox.

A service that changes a lead calls `event_record` (or `events_record_bulk` for set-based writers)
inside its own transaction: the event row, and one outbox entry per reaction that
`settings.OUTBOX_REACTIONS` names for its type, commit or roll back with the change itself. After
commit the dispatcher task is started; it reads the outbox in id order, claims each entry with a
conditional update, runs the reaction and marks the entry done in one transaction. A beat job every
minute runs it again, so an entry whose kick was lost (the broker was down) is dispatched as soon as
a worker runs.

Decisions worth knowing:
- Reactions are dotted paths in settings (as Django names its backends), so that this module, which
  every service imports, imports no reaction: a reaction may use any service without a cycle.
- A reaction receives the LeadEvent and must be idempotent for its own side effects outside the
  database (an email claims its row first); its database writes commit with the "done" mark.
- Order: entries run in id order; once an entry of a (lead, reaction) pair fails or waits, the later
  entries of that pair wait too, so a reaction never sees a lead's events out of order.
- A failing reaction is retried with backoff (1, 2, 4 ... minutes) and given up after
  MAX_ATTEMPTS; given-up entries stay in the table, and /health/ counts them.

The payload of each type (ids are primary keys; stages, kinds and reasons are their codes):
- lead.created        {"email", "external_id"}
- lead.updated        {"changes": {field: [old, new]}} (only the fields that changed), and
                      "source_or_campaign": true when one of them is the source or campaign
- lead.stage_changed  {"from", "to", "stage_change_id", "reason", "note", "deal_value"}, and the
  same payload again under the specific type of the move: lead.mql, lead.accepted (to SAL),
  lead.rejected, lead.recycled, lead.won, lead.lost
- lead.assigned       {"owner_id", "previous_owner_id", "assignment_id", "rule_id", "rule", "note"}
- lead.merged         {"merged_lead_id", "merge_record_id", "moved": {"touchpoints", ...}}
- touchpoint.recorded {"touchpoint_id", "kind", "campaign_id", "sales"}; occurred_at is the
  touchpoint's own time, recorded_at when it was logged
- score.changed       {"model_id", "before": {"fit", "total", "grade", "qualifies"}, "after": {...}}
- scoring.activated   (no lead) {"model_id", "name", "replaced_id", "rescore_run_id"}
"""

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from alignment.models import User
from leads.models import EventType, Lead, LeadEvent, OutboxEntry

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# a claim older than this was lost with its worker: the entry may be claimed again
CLAIM_STALE_AFTER = timedelta(minutes=10)
DISPATCH_BATCH = 500
# dispatched entries are kept this long (to see what ran), then pruned
PRUNE_AFTER = timedelta(days=7)

_encoder = DjangoJSONEncoder()


def json_value(value: Any) -> Any:
    """A value as it is kept in a payload: datetimes, decimals and UUIDs as strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if hasattr(value, "pk"):
        return value.pk
    return _encoder.default(value)


class ReactionGates:
    """A reaction may want only some events now (webhooks: only the types an active endpoint
    subscribes to): settings.OUTBOX_REACTION_GATES names, per reaction, a function returning the
    event types it wants ("*" for all). Each gate is asked once per write, in the writer's
    transaction, so events that nobody wants queue nothing for it, and what it answers is exact
    (no cache to go stale)."""

    def __init__(self):
        self._wanted: dict[str, frozenset[str]] = {}

    def allows(self, reaction: str, event_type: str) -> bool:
        gate = settings.OUTBOX_REACTION_GATES.get(reaction)
        if gate is None:
            return True
        if reaction not in self._wanted:
            self._wanted[reaction] = frozenset(_reaction(gate)())
        wanted = self._wanted[reaction]
        return "*" in wanted or event_type in wanted


def reactions_for(
    event_type: str, payload: dict | None = None, *, gates: ReactionGates | None = None
) -> tuple[str, ...]:
    """The reactions settings name for an event: those of its type, and those of `type[flag]`
    when the payload's `flag` is true ("touchpoint.recorded[sales]": only sales touches, so that
    ten million marketing touches queue nothing for a reaction that ignores them), and those of
    "*" (every type) — each only if its gate, if it has one, wants the event."""
    reactions = settings.OUTBOX_REACTIONS
    names = list(reactions.get(event_type, ()))
    names += [name for name in reactions.get("*", ()) if name not in names]
    for key, flagged in reactions.items():
        flag = key[len(event_type) + 1 : -1]
        if key.startswith(event_type + "[") and key.endswith("]") and (payload or {}).get(flag):
            names += flagged
    gates = gates or ReactionGates()
    return tuple(name for name in names if gates.allows(name, event_type))


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event for the bulk writer: the same facts `event_record` takes."""

    type: str
    lead_id: int | None
    occurred_at: datetime
    payload: dict
    actor_id: int | None = None
    system: str = ""


def _actor_check(actor_id: int | None, system: str) -> None:
    if actor_id is None and not system:
        raise ValueError("An event needs a person or a named system.")


def _reactions_each(events: Iterable[tuple[str, dict]]) -> list[tuple[str, ...]]:
    """The reactions of each (type, payload), the gates asked once for them all; worked out
    once per type and set of the payload flags that settings name for it (a bulk write repeats
    a few types a thousand times)."""
    gates = ReactionGates()
    flags: dict[str, tuple[str, ...]] = {}
    known: dict[tuple, tuple[str, ...]] = {}
    answers = []
    for type, payload in events:
        if type not in flags:
            flags[type] = tuple(
                key[len(type) + 1 : -1]
                for key in settings.OUTBOX_REACTIONS
                if key.startswith(type + "[") and key.endswith("]")
            )
        key = (type, *(bool((payload or {}).get(flag)) for flag in flags[type]))
        if key not in known:
            known[key] = reactions_for(type, payload, gates=gates)
        answers.append(known[key])
    return answers


def _entries(event: LeadEvent, reactions: Iterable[str], now: datetime) -> list[OutboxEntry]:
    """A written event's outbox entries, one per reaction."""
    return [
        OutboxEntry(
            event_id=event.pk,
            reaction=name,
            lead_id=event.lead_id,
            created_at=now,
            available_at=now,
        )
        for name in reactions
    ]


def _outbox_entries(events: Iterable[LeadEvent], *, now: datetime) -> list[OutboxEntry]:
    """One entry per reaction that settings name for each (written) event's type."""
    events = list(events)
    reactions = _reactions_each((e.type, e.payload) for e in events)
    return [
        entry
        for event, names in zip(events, reactions, strict=True)
        for entry in _entries(event, names, now)
    ]


# The hot path (every touchpoint appends an event) writes the event and its outbox entries in one
# statement on PostgreSQL: the ORM's two INSERTs cost twice the round trips and more than the
# database work itself.
_EVENT_SQL = (
    "INSERT INTO leads_leadevent (lead_id, type, occurred_at, recorded_at, actor_id, system, "
    "payload) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id"
)
_EVENT_AND_OUTBOX_SQL = (
    f"WITH e AS ({_EVENT_SQL}) "
    "INSERT INTO leads_outboxentry (event_id, reaction, lead_id, created_at, available_at, "
    "attempts, last_error) SELECT e.id, r.name, %s, %s, %s, 0, '' "
    "FROM e, unnest(%s::text[]) AS r(name) RETURNING event_id"
)


def event_record(
    *,
    type: str,
    lead: Lead | None,
    by: User | None = None,
    system: str = "",
    payload: dict | None = None,
    at: datetime | None = None,
) -> LeadEvent:
    """Append one event (and its outbox entries) in the caller's transaction."""
    _actor_check(by.pk if by is not None else None, system)
    now = timezone.now()
    event = LeadEvent(
        lead_id=lead.pk if lead is not None else None,
        type=type,
        occurred_at=at or now,
        recorded_at=now,
        actor=by,
        system=system,
        payload=json_value(payload or {}),
    )
    reactions = reactions_for(type, event.payload)
    if connection.vendor == "postgresql":
        row = [
            event.lead_id,
            type,
            event.occurred_at,
            now,
            event.actor_id,
            system,
            _encoder.encode(event.payload),
        ]
        with connection.cursor() as cursor:
            if reactions:
                cursor.execute(
                    _EVENT_AND_OUTBOX_SQL, [*row, event.lead_id, now, now, list(reactions)]
                )
            else:
                cursor.execute(_EVENT_SQL, row)
            event.pk = cursor.fetchone()[0]
        event._state.adding = False
    else:
        event.save(force_insert=True)
        OutboxEntry.objects.bulk_create(_entries(event, reactions, now))
    if reactions:
        outbox_kick_after_commit()
    return event


def event_record_from(event: NewEvent, *, by: User | None = None) -> LeadEvent:
    """Append one event built as a NewEvent (the form the bulk writer takes); `by` is the person
    its actor_id names."""
    return event_record(
        type=event.type,
        lead=Lead(pk=event.lead_id) if event.lead_id is not None else None,
        by=by,
        system=event.system,
        at=event.occurred_at,
        payload=event.payload,
    )


# The bulk writer on PostgreSQL: the events in one INSERT from arrays (in the given order, so ids
# follow it), then their outbox entries the same way. bulk_create compiled every value of 2,000
# model instances, which cost more than the database work. (column, type) of each value an event
# brings; recorded_at is one value for all.
_EVENT_COLUMNS = (
    ("lead_id", "bigint"),
    ("type", "text"),
    ("occurred_at", "timestamptz"),
    ("actor_id", "bigint"),
    ("system", "text"),
    ("payload", "jsonb"),
)
_OUTBOX_BULK_SQL = (
    "INSERT INTO leads_outboxentry (event_id, reaction, lead_id, created_at, available_at, "
    "attempts, last_error) SELECT o.event_id, o.reaction, o.lead_id, %s, %s, 0, '' "
    "FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) WITH ORDINALITY "
    "AS o(event_id, reaction, lead_id, n) ORDER BY o.n"
)


def _events_insert_postgresql(events: list[NewEvent], payloads: list[dict], now: datetime) -> list:
    """INSERT the events in order (the rows from arrays, a column that holds one value in every
    event sent once: a batch repeats its actor, system and time); their ids, in that order."""
    columns = {
        "lead_id": [e.lead_id for e in events],
        "type": [e.type for e in events],
        "occurred_at": [e.occurred_at for e in events],
        "actor_id": [e.actor_id for e in events],
        "system": [e.system for e in events],
        "payload": [_encoder.encode(p) for p in payloads],
    }
    selected, scalars, arrays, names, rows = ["%s"], [now], [], [], []
    for name, kind in _EVENT_COLUMNS:
        values = columns[name]
        first = values[0]
        # the lead ids always as an array: the rows come from the arrays
        if name != "lead_id" and all(type(v) is type(first) and v == first for v in values):
            selected.append(f"%s::{kind}")
            scalars.append(first)
        else:
            selected.append(f"r.{name}")
            arrays.append(f"%s::text[]::{kind}[]" if kind == "jsonb" else f"%s::{kind}[]")
            names.append(name)
            rows.append(values)
    sql = (
        "INSERT INTO leads_leadevent (recorded_at, "
        f"{', '.join(name for name, _ in _EVENT_COLUMNS)}) SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS r({', '.join(names)}, n) "
        "ORDER BY r.n RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*scalars, *rows])
        ids = [row[0] for row in cursor.fetchall()]
    # RETURNING answers in insertion order, which ORDER BY fixes (as bulk_create relies on)
    return ids


def events_record_bulk(
    events: Iterable[NewEvent], *, react: bool = True, batch_size: int = 2000
) -> int:
    """Append many events at once (imports, the demo seed) with their outbox entries; returns how
    many events were written. Same rows as `event_record`: on PostgreSQL one INSERT for the
    events and one for their entries per `batch_size` events, elsewhere bulk_create.

    `react=False` writes history only: facts from the past (an imported outcome, the demo's
    generated years) are recorded, but nothing reacts to them (no announcement of a win from
    2019)."""
    events = list(events)
    if not events:
        return 0
    for e in events:
        _actor_check(e.actor_id, e.system)
    now = timezone.now()
    if connection.vendor != "postgresql":
        rows = [
            LeadEvent(
                lead_id=e.lead_id,
                type=e.type,
                occurred_at=e.occurred_at,
                recorded_at=now,
                actor_id=e.actor_id,
                system=e.system,
                payload=json_value(e.payload),
            )
            for e in events
        ]
        # bulk_create sets primary keys on SQLite >= 3.35 (RETURNING)
        LeadEvent.objects.bulk_create(rows, batch_size=batch_size)
        entries = _outbox_entries(rows, now=now) if react else []
        if entries:
            OutboxEntry.objects.bulk_create(entries, batch_size=batch_size)
            outbox_kick_after_commit()
        return len(rows)

    payloads = [json_value(e.payload) for e in events]
    ids: list[int] = []
    for start in range(0, len(events), batch_size):
        ids += _events_insert_postgresql(
            events[start : start + batch_size], payloads[start : start + batch_size], now
        )
    if not react:
        return len(events)
    reactions = _reactions_each((e.type, p) for e, p in zip(events, payloads, strict=True))
    entries = [
        (event_id, name, e.lead_id)
        for e, event_id, names in zip(events, ids, reactions, strict=True)
        for name in names
    ]
    if entries:
        with connection.cursor() as cursor:
            for start in range(0, len(entries), batch_size):
                chunk = entries[start : start + batch_size]
                cursor.execute(
                    _OUTBOX_BULK_SQL,
                    [now, now, *(list(column) for column in zip(*chunk, strict=True))],
                )
        outbox_kick_after_commit()
    return len(events)


# --- after commit: the kick ----------------------------------------------------------------------


def _kick() -> None:
    """Start the dispatcher now; if the broker cannot take the message, the beat job will."""
    try:
        outbox_dispatch_task.apply_async(retry=False)
    except Exception as error:  # the broker is down: nothing is lost, the rows wait
        logger.warning("Outbox: could not queue the dispatcher (%s); the beat job will.", error)


def outbox_kick_after_commit() -> None:
    """Queue the dispatcher once per transaction, after it commits."""
    if not connection.in_atomic_block:
        _kick()
        return
    # one kick per transaction is enough, however many events it appends
    if any(func is _kick for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_kick, robust=True)


# --- the dispatcher ------------------------------------------------------------------------------

_reactions: dict[str, Callable[[LeadEvent], Any]] = {}


def _reaction(name: str) -> Callable[[LeadEvent], Any]:
    found = _reactions.get(name)
    if found is None:
        found = _reactions[name] = import_string(name)
    return found


@dataclass
class DispatchResult:
    done: int = 0
    failed: int = 0
    waiting: int = 0


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** (attempts - 1), 60))


def _run_one(entry: OutboxEntry, now: datetime) -> bool:
    """Claim one entry, run its reaction and mark it done; False when it failed or was taken."""
    claimed = (
        OutboxEntry.objects.filter(pk=entry.pk, dispatched_at=None, failed_at=None)
        .filter(Q(claimed_at=None) | Q(claimed_at__lt=now - CLAIM_STALE_AFTER))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if claimed != 1:
        return False
    attempts = entry.attempts + 1
    try:
        reaction = _reaction(entry.reaction)
        with transaction.atomic():
            event = LeadEvent.objects.get(pk=entry.event_id)
            reaction(event)
            OutboxEntry.objects.filter(pk=entry.pk).update(dispatched_at=timezone.now())
    except Exception as error:
        logger.warning(
            "Outbox: reaction %s failed for event %s (attempt %s): %s",
            entry.reaction,
            entry.event_id,
            attempts,
            error,
        )
        gave_up = attempts >= MAX_ATTEMPTS
        OutboxEntry.objects.filter(pk=entry.pk).update(
            claimed_at=None,
            available_at=timezone.now() + _backoff(attempts),
            failed_at=timezone.now() if gave_up else None,
            last_error="".join(traceback.format_exception_only(error))[-2000:],
        )
        return False
    return True


def outbox_dispatch(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> DispatchResult:
    """Run the pending reactions in id order, `limit` entries per pass, until none is left."""
    result = DispatchResult()
    after_id = 0
    blocked: set[tuple[int | None, str]] = set()
    fixed_now = now
    while True:
        now = fixed_now or timezone.now()
        entries = list(
            OutboxEntry.objects.filter(dispatched_at=None, failed_at=None, pk__gt=after_id)
            .order_by("pk")
            .only(
                "pk", "event_id", "reaction", "lead_id", "attempts", "available_at", "claimed_at"
            )[:limit]
        )
        if not entries:
            return result
        for entry in entries:
            after_id = entry.pk
            key = (entry.lead_id, entry.reaction)
            busy = entry.claimed_at is not None and entry.claimed_at >= now - CLAIM_STALE_AFTER
            if key in blocked or entry.available_at > now or busy:
                blocked.add(key)
                result.waiting += 1
                continue
            if _run_one(entry, now):
                result.done += 1
            else:
                blocked.add(key)
                result.failed += 1


@shared_task(name="leads.outbox_dispatch", ignore_result=True)
def outbox_dispatch_task() -> None:
    """Hand the committed events on to their reactions (started after commit, and every minute)."""
    outbox_dispatch()


def outbox_retry(*, ids: Iterable[int]) -> int:
    """Give entries that were given up another round of attempts (an admin action)."""
    return OutboxEntry.objects.filter(pk__in=list(ids), dispatched_at=None).update(
        failed_at=None, attempts=0, available_at=timezone.now(), claimed_at=None
    )


def outbox_prune(*, older_than: timedelta = PRUNE_AFTER, batch_size: int = 10_000) -> int:
    """Delete entries dispatched longer ago than `older_than`, in batches (the events stay: the
    log is the record; an outbox entry only says a reaction has run)."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            OutboxEntry.objects.filter(dispatched_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += OutboxEntry.objects.filter(pk__in=ids).delete()[0]


@shared_task(name="leads.outbox_prune", ignore_result=True)
def outbox_prune_task() -> None:
    outbox_prune()


def outbox_backlog(*, now: datetime | None = None) -> dict[str, Any]:
    """What /health/ reports: entries not yet dispatched, the oldest one's age, and given-up ones."""
    now = now or timezone.now()
    pending = OutboxEntry.objects.filter(dispatched_at=None, failed_at=None)
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "pending": pending.count(),
        "oldest_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "failed": OutboxEntry.objects.filter(failed_at__isnull=False).count(),
    }


__all__ = [
    "EventType",
    "NewEvent",
    "event_record",
    "event_record_from",
    "events_record_bulk",
    "outbox_backlog",
    "outbox_dispatch",
    "outbox_prune",
    "outbox_retry",
]
