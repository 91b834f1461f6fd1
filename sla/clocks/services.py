"""Keeping the stored SLA clocks equal to what the events say.

`clocks_sync` replays one lead's events (`replay`) under the agreements in force at each moment
and writes the difference: new clocks, ended clocks, a new owner. The outbox reaction runs it
after every event that can start, meet or cancel a clock, so the clocks follow the facts without
`sla/` reaching into `leads/`; `clocks_rebuild` runs it for many leads (the demo, a repair), and
`clocks_verify` runs the same replay without writing and lists every difference.
"""

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from alignment.lib.business_time import Calendar
from leads.models import EventType, LeadEvent
from sla.clocks.models import RUNNING_STATUSES, ClockStatus, SlaClock
from sla.clocks.replay import CANCELLED, MET, ClockFacts, Fact, Terms, replay
from sla.models import Agreement

# the events a clock can start, end or change owner on
CLOCK_EVENTS = (
    EventType.LEAD_STAGE_CHANGED,
    EventType.LEAD_ASSIGNED,
    EventType.TOUCHPOINT_RECORDED,
)
# the fields replay decides; the flagging job's marks (warned_at, breached_at, ...) are not here
DERIVED_FIELDS = (
    "owner_id",
    "agreement_id",
    "started_at",
    "warn_at",
    "due_at",
    "reassign_at",
    "end_event_id",
    "ended_at",
    "met_at",
    "cancel_reason",
    "business_seconds",
)


@dataclass
class TermsBook:
    """Every agreement version that was ever in force, by the moment it took effect: the terms
    at an instant are those of the latest version activated by then. Before the first version
    took effect (history imported or seeded from before the install) the first one applies."""

    starts: list[datetime] = field(default_factory=list)
    terms: list[Terms] = field(default_factory=list)

    @classmethod
    def load(cls) -> "TermsBook":
        book = cls()
        for agreement in Agreement.objects.filter(activated_at__isnull=False).order_by(
            "activated_at", "id"
        ):
            book.starts.append(agreement.activated_at)
            book.terms.append(terms_of(agreement))
        return book

    def at(self, moment: datetime) -> Terms | None:
        if not self.terms:
            return None
        return self.terms[max(0, bisect.bisect_right(self.starts, moment) - 1)]


# calendars by their JSON: building one's holiday tables is slow, and a calendar is a value
_CALENDARS: dict[str, Calendar] = {}


def calendar_of(data: dict) -> Calendar:
    key = json.dumps(data, sort_keys=True)
    found = _CALENDARS.get(key)
    if found is None:
        found = _CALENDARS[key] = Calendar.from_json(data)
    return found


def terms_of(agreement: Agreement) -> Terms:
    return Terms(
        agreement_id=agreement.pk,
        response_hours=agreement.response_hours,
        decision_hours=agreement.decision_hours,
        warn_share=agreement.warn_share,
        on_reassign=agreement.on_reassign,
        calendar=calendar_of(agreement.calendar),
        reassign_after_hours=agreement.reassign_after_hours,
    )


def _fact(event: LeadEvent) -> Fact:
    return Fact(
        id=event.pk,
        type=event.type,
        at=event.occurred_at,
        payload=event.payload,
        actor_id=event.actor_id,
        system=event.system,
        lead_id=event.lead_id,
    )


def lead_facts(lead_id: int) -> tuple[list[Fact], Fact | None]:
    """The lead's events that clocks read, and the merge that ended it (the
    `lead.merged` of the lead it was merged into), if any."""
    events = LeadEvent.objects.filter(lead_id=lead_id, type__in=CLOCK_EVENTS).order_by("id")
    merged = (
        LeadEvent.objects.filter(type=EventType.LEAD_MERGED, payload__merged_lead_id=lead_id)
        .order_by("id")
        .first()
    )
    return [_fact(e) for e in events], (_fact(merged) if merged else None)


def derived_clocks(lead_id: int, book: TermsBook) -> list[ClockFacts]:
    facts, merged = lead_facts(lead_id)
    return replay(facts, book.at, merged=merged)


def status_of(clock: ClockFacts, stored: str | None) -> str:
    """An ended clock's status follows from the facts; a running one keeps what the flagging job
    marked (pending when new)."""
    if clock.outcome == MET:
        return ClockStatus.BREACHED if clock.breached_when_met else ClockStatus.MET
    if clock.outcome == CANCELLED:
        return ClockStatus.CANCELLED
    return stored if stored in RUNNING_STATUSES else ClockStatus.PENDING


def _values(clock: ClockFacts) -> dict:
    return {
        "owner_id": clock.owner_id,
        "agreement_id": clock.agreement_id,
        "started_at": clock.started_at,
        "warn_at": clock.warn_at,
        "due_at": clock.due_at,
        "reassign_at": clock.reassign_at,
        "end_event_id": clock.end_event_id,
        "ended_at": clock.ended_at,
        "met_at": clock.ended_at if clock.outcome == MET else None,
        "cancel_reason": clock.cancel_reason,
        "business_seconds": clock.business_seconds,
    }


@dataclass
class SyncResult:
    started: list[SlaClock] = field(default_factory=list)
    ended: list[SlaClock] = field(default_factory=list)
    changed: list[SlaClock] = field(default_factory=list)


@transaction.atomic
def clocks_sync(*, lead_id: int, book: TermsBook | None = None) -> SyncResult:
    """Make the lead's stored clocks what its events say (and nothing else). Idempotent: a second
    run with no new event writes nothing."""
    book = book or TermsBook.load()
    # the lead's clocks locked first: a concurrent sync of the same lead waits, then sees ours
    stored = {
        (c.start_event_id, c.kind): c
        for c in SlaClock.objects.select_for_update().filter(lead_id=lead_id).order_by("id")
    }
    result = SyncResult()
    new_rows = []
    derived = derived_clocks(lead_id, book)
    # ended first, so that a restarted clock's new row never meets the old one still running
    for clock in sorted(derived, key=lambda c: c.ended_at is None):
        row = stored.get(clock.key())
        values = _values(clock)
        if row is None:
            new_rows.append(
                SlaClock(
                    lead_id=lead_id,
                    kind=clock.kind,
                    start_event_id=clock.start_event_id,
                    status=status_of(clock, None),
                    **values,
                )
            )
            continue
        status = status_of(clock, row.status)
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if status != row.status:
            changed.append("status")
        if not changed:
            continue
        was_running = row.ended_at is None
        for name, value in values.items():
            setattr(row, name, value)
        row.status = status
        row.save(update_fields=[*{n.removesuffix("_id") for n in changed}, "updated_at"])
        (result.ended if was_running and row.ended_at else result.changed).append(row)
    if new_rows:
        result.started = SlaClock.objects.bulk_create(new_rows)
    return result


def clock_reaction(event: LeadEvent) -> None:
    """Outbox reaction to the events that start, meet or cancel clocks (and to merges, which end
    the duplicate's clocks)."""
    book = TermsBook.load()
    if event.type == EventType.LEAD_MERGED:
        merged_id = event.payload.get("merged_lead_id")
        if merged_id:
            clocks_sync(lead_id=merged_id, book=book)
        return
    if event.lead_id is not None:
        clocks_sync(lead_id=event.lead_id, book=book)


def _leads_with_clock_events() -> Iterable[int]:
    return (
        LeadEvent.objects.filter(
            Q(type=EventType.LEAD_ASSIGNED)
            | Q(type=EventType.LEAD_STAGE_CHANGED, payload__to="mql")
        )
        .order_by("lead_id")
        .values_list("lead_id", flat=True)
        .distinct()
        .iterator(chunk_size=2000)
    )


def clocks_rebuild(*, lead_ids: Iterable[int] | None = None) -> SyncResult:
    """Sync the clocks of these leads (default: every lead that was ever an MQL or assigned)."""
    book = TermsBook.load()
    total = SyncResult()
    for lead_id in lead_ids if lead_ids is not None else _leads_with_clock_events():
        if lead_id is None:
            continue
        result = clocks_sync(lead_id=lead_id, book=book)
        total.started += result.started
        total.ended += result.ended
        total.changed += result.changed
    return total


# --- checking the stored clocks against the events (`manage.py sla_verify`) -----------------------

VERIFY_CHUNK = 500


@dataclass(frozen=True)
class Difference:
    lead_id: int
    kind: str
    start_event_id: int
    problem: str

    def as_text(self) -> str:
        return (
            f"lead {self.lead_id}, {self.kind} clock of event {self.start_event_id}: {self.problem}"
        )


def _compare(lead_id: int, derived: list[ClockFacts], stored: list[SlaClock]) -> list[Difference]:
    found = []
    rows = {(c.start_event_id, c.kind): c for c in stored}
    for clock in derived:
        row = rows.pop(clock.key(), None)
        if row is None:
            found.append(Difference(lead_id, clock.kind, clock.start_event_id, "missing"))
            continue
        for name, value in _values(clock).items():
            if getattr(row, name) != value:
                found.append(
                    Difference(
                        lead_id,
                        clock.kind,
                        clock.start_event_id,
                        f"{name} is {getattr(row, name)!r}, the events say {value!r}",
                    )
                )
        expected = status_of(clock, row.status)
        if row.status != expected:
            found.append(
                Difference(
                    lead_id,
                    clock.kind,
                    clock.start_event_id,
                    f"status is {row.status}, the events say {expected}",
                )
            )
    for (start_event_id, kind), _row in rows.items():
        found.append(Difference(lead_id, kind, start_event_id, "stored, but no event starts it"))
    return found


def _chunks(ids: Iterable[int], size: int) -> Iterable[list[int]]:
    chunk: list[int] = []
    for lead_id in ids:
        chunk.append(lead_id)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def clocks_verify(*, lead_ids: Iterable[int] | None = None) -> tuple[int, list[Difference]]:
    """Replay the events of these leads (default: every lead with a clock or a clock event) and
    compare with the stored clocks, writing nothing. Returns how many leads were checked and
    every difference. Reads by chunks of leads: a fixed number of queries per chunk."""
    book = TermsBook.load()
    if lead_ids is None:
        with_events = set(_leads_with_clock_events())
        with_clocks = set(SlaClock.objects.values_list("lead_id", flat=True).distinct())
        lead_ids = sorted((with_events | with_clocks) - {None})
    checked, differences = 0, []
    for chunk in _chunks(lead_ids, VERIFY_CHUNK):
        facts: dict[int, list[Fact]] = {lead_id: [] for lead_id in chunk}
        for event in LeadEvent.objects.filter(lead_id__in=chunk, type__in=CLOCK_EVENTS).order_by(
            "id"
        ):
            facts[event.lead_id].append(_fact(event))
        merges: dict[int, Fact] = {}
        for event in LeadEvent.objects.filter(
            type=EventType.LEAD_MERGED, payload__merged_lead_id__in=chunk
        ).order_by("-id"):
            merges[event.payload["merged_lead_id"]] = _fact(event)
        stored: dict[int, list[SlaClock]] = {lead_id: [] for lead_id in chunk}
        for clock in SlaClock.objects.filter(lead_id__in=chunk):
            stored[clock.lead_id].append(clock)
        for lead_id in chunk:
            derived = replay(facts[lead_id], book.at, merged=merges.get(lead_id))
            differences += _compare(lead_id, derived, stored[lead_id])
            checked += 1
    return checked, differences
