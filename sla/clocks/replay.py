"""SLA clocks derived from a lead's events: the one place that says when a clock starts, when it
is met and when it is cancelled. Pure (no database): the reaction that keeps the stored clocks
and `manage.py sla_verify`, which checks them, both call `replay` on the same events, so the
stored clocks are always what the facts say.

The rules, in the order the events happened (their time, then their id: history imported or
seeded in bulk is not recorded in time order, and a call logged late counts when it was made):
- A lead that is an MQL and has an owner has two clocks running: response (the owner's first
  call, sales email or meeting) and decision (accept or reject). They start when both hold: at
  the `lead.assigned` of an MQL, or at the `lead.mql` of a lead that already has an owner.
- Each clock is due after the agreement's business hours (`response_hours`, `decision_hours`)
  from its start, counted on the agreement's calendar; its warning point is `warn_share` of that.
  The agreement is the one in force when the clock starts.
- A sales touch by the owner (or logged by an integration, which acts for the owner) at or after
  the start meets the response clock at the touch's time. Accepting or rejecting meets the
  decision clock, and the response clock too if it is still running (a decision is a response).
- Recycling the MQL cancels both; so does merging the lead into another (the duplicate's clocks
  end there). A reassignment restarts both clocks for the new owner, or keeps them and only
  changes the owner, as the agreement of the running clock says (`on_reassign`).
- A met clock counts as breached when it was met after its due time. Whether a running clock
  is pending, warned or breached depends on the time, not on the events: the flagging job marks
  that.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from alignment.lib.business_time import Calendar

RESPONSE = "response"
DECISION = "decision"
KINDS = (RESPONSE, DECISION)
MET = "met"
CANCELLED = "cancelled"
RESTART = "restart"
KEEP = "keep"

MQL = "mql"
DECIDED = ("sal", "rejected")
# the touches that stop the response clock (a note is not a touch of the lead)
FIRST_TOUCH_KINDS = frozenset({"call", "sales_email", "meeting"})


@dataclass(frozen=True)
class Fact:
    """One lead event as the clocks read it."""

    id: int
    type: str
    at: datetime
    payload: dict[str, Any]
    actor_id: int | None = None
    system: str = ""
    lead_id: int | None = None


@dataclass(frozen=True)
class Terms:
    """What an agreement version promises, as far as clocks go."""

    agreement_id: int
    response_hours: Decimal
    decision_hours: Decimal
    warn_share: Decimal
    on_reassign: str
    calendar: Calendar
    # business hours after the due time at which a breached MQL goes to the next rep (None: never)
    reassign_after_hours: Decimal | None = None

    def hours(self, kind: str) -> Decimal:
        return self.response_hours if kind == RESPONSE else self.decision_hours


def _duration(hours: Decimal) -> timedelta:
    # whole seconds: business time is measured to the second, and a Decimal of hours is exact
    return timedelta(seconds=int((Decimal(hours) * 3600).to_integral_value()))


@dataclass
class ClockFacts:
    """One clock as the events make it. `outcome` is None while it runs."""

    kind: str
    owner_id: int | None
    agreement_id: int
    start_event_id: int
    started_at: datetime
    warn_at: datetime
    due_at: datetime
    reassign_at: datetime | None = None
    end_event_id: int | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    cancel_reason: str = ""
    business_seconds: int | None = None
    terms: Terms | None = field(default=None, repr=False, compare=False)

    @property
    def breached_when_met(self) -> bool:
        return self.outcome == MET and self.ended_at is not None and self.ended_at > self.due_at

    def key(self) -> tuple[int, str]:
        return self.start_event_id, self.kind


def clock_start(kind: str, *, owner_id: int | None, event: Fact, terms: Terms) -> ClockFacts:
    allowed = _duration(terms.hours(kind))
    warn = _duration(terms.hours(kind) * terms.warn_share)
    calendar = terms.calendar
    due_at = calendar.add(event.at, allowed)
    reassign_at = None
    if terms.reassign_after_hours is not None:
        reassign_at = calendar.add(due_at, _duration(terms.reassign_after_hours))
    return ClockFacts(
        kind=kind,
        owner_id=owner_id,
        agreement_id=terms.agreement_id,
        start_event_id=event.id,
        started_at=event.at,
        warn_at=calendar.add(event.at, warn),
        due_at=due_at,
        reassign_at=reassign_at,
        terms=terms,
    )


def _end(clock: ClockFacts, *, event: Fact, at: datetime, outcome: str, reason: str = "") -> None:
    clock.end_event_id = event.id
    clock.ended_at = at
    clock.outcome = outcome
    clock.cancel_reason = reason
    assert clock.terms is not None
    clock.business_seconds = int(clock.terms.calendar.between(clock.started_at, at).total_seconds())


def replay(
    facts: Iterable[Fact],
    terms_at: Callable[[datetime], Terms | None],
    *,
    merged: Fact | None = None,
) -> list[ClockFacts]:
    """Every clock of one lead, in the order they started, from its events in time order.
    `terms_at(t)` is the agreement in force at t (None: no agreement, no clocks). `merged` is
    the `lead.merged` event of the lead this one was merged into, if it was."""
    clocks: list[ClockFacts] = []
    running: dict[str, ClockFacts] = {}
    stage: str | None = None
    owner_id: int | None = None

    def start(event: Fact) -> None:
        terms = terms_at(event.at)
        if terms is None:
            return
        for kind in KINDS:
            clock = clock_start(kind, owner_id=owner_id, event=event, terms=terms)
            running[kind] = clock
            clocks.append(clock)

    def cancel(event: Fact, reason: str) -> None:
        for kind in list(running):
            _end(running.pop(kind), event=event, at=event.at, outcome=CANCELLED, reason=reason)

    for event in sorted(facts, key=lambda f: (f.at, f.id)):
        payload = event.payload
        if event.type == "lead.stage_changed":
            before, stage = payload.get("from"), payload.get("to")
            if stage == MQL and owner_id is not None and not running:
                start(event)
            elif before == MQL and stage in DECIDED:
                for kind in (RESPONSE, DECISION):
                    if kind in running:
                        _end(running.pop(kind), event=event, at=event.at, outcome=MET)
            elif before == MQL:
                cancel(event, "recycled" if stage == "recycled" else f"left MQL ({stage})")
        elif event.type == "lead.assigned":
            owner_id = payload.get("owner_id")
            if stage != MQL:
                continue
            if not running:
                start(event)
                continue
            terms = next(iter(running.values())).terms
            if terms is not None and terms.on_reassign == KEEP:
                for clock in running.values():
                    clock.owner_id = owner_id
            else:
                cancel(event, "reassigned")
                start(event)
        elif event.type == "touchpoint.recorded":
            clock = running.get(RESPONSE)
            if (
                clock is not None
                and payload.get("sales")
                and payload.get("kind") in FIRST_TOUCH_KINDS
                and (event.actor_id == clock.owner_id or (event.actor_id is None and event.system))
                and event.at >= clock.started_at
            ):
                _end(running.pop(RESPONSE), event=event, at=event.at, outcome=MET)
    if merged is not None:
        cancel(merged, f"merged into lead {merged.lead_id}")
    return clocks
