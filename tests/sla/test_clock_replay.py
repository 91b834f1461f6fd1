"""The clock rules on plain facts (no database): what starts, meets and cancels a clock."""

import datetime as dt
from decimal import Decimal

from alignment.lib.business_time import Calendar
from sla.clocks.replay import (
    CANCELLED,
    DECISION,
    KEEP,
    MET,
    RESPONSE,
    RESTART,
    Fact,
    Terms,
    replay,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # a Monday
ALWAYS = Calendar.from_json(
    {
        "timezone": "UTC",
        "hours": {
            d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
        "country": "",
        "subdivision": "",
        "closed_days": [],
    }
)
OWNER, OTHER = 7, 8


def terms(on_reassign=RESTART, calendar=ALWAYS, reassign_after=None) -> Terms:
    return Terms(
        agreement_id=1,
        response_hours=Decimal("4"),
        decision_hours=Decimal("16"),
        warn_share=Decimal("0.75"),
        on_reassign=on_reassign,
        calendar=calendar,
        reassign_after_hours=reassign_after,
    )


class Log:
    """Facts in the order they are recorded, each an hour after the previous unless told."""

    def __init__(self):
        self.facts: list[Fact] = []
        self.at = T0

    def add(self, type, payload, *, hours=1.0, actor=None, system="", at=None) -> Fact:
        self.at = at or self.at + dt.timedelta(hours=hours)
        fact = Fact(len(self.facts) + 1, type, self.at, payload, actor, system, 1)
        self.facts.append(fact)
        return fact

    def mql(self, **kw):
        return self.add("lead.stage_changed", {"from": "nurturing", "to": "mql"}, **kw)

    def assign(self, owner, **kw):
        return self.add("lead.assigned", {"owner_id": owner}, **kw)

    def move(self, to, **kw):
        return self.add("lead.stage_changed", {"from": "mql", "to": to}, actor=OWNER, **kw)

    def touch(self, kind="call", actor=OWNER, sales=True, **kw):
        return self.add("touchpoint.recorded", {"kind": kind, "sales": sales}, actor=actor, **kw)


def by_kind(clocks):
    return {(c.kind, c.start_event_id): c for c in clocks}


def test_an_assigned_mql_gets_a_response_and_a_decision_clock_due_in_business_hours():
    log = Log()
    log.mql()
    start = log.assign(OWNER)
    clocks = replay(log.facts, lambda at: terms())
    assert [(c.kind, c.owner_id, c.outcome) for c in clocks] == [
        (RESPONSE, OWNER, None),
        (DECISION, OWNER, None),
    ]
    response, decision = clocks
    assert response.started_at == start.at
    assert response.due_at == start.at + dt.timedelta(hours=4)
    assert response.warn_at == start.at + dt.timedelta(hours=3)
    assert decision.due_at == start.at + dt.timedelta(hours=16)


def test_an_mql_that_already_has_an_owner_starts_its_clocks_when_it_qualifies():
    log = Log()
    log.assign(OWNER)
    start = log.mql()
    clocks = replay(log.facts, lambda at: terms())
    assert {c.start_event_id for c in clocks} == {start.id}


def test_a_lead_that_is_not_an_mql_gets_no_clock_when_assigned():
    log = Log()
    log.assign(OWNER)
    assert replay(log.facts, lambda at: terms()) == []


def test_only_the_owners_call_email_or_meeting_meets_the_response_clock():
    log = Log()
    log.mql()
    log.assign(OWNER)
    log.touch("note")  # a note is not a touch of the lead
    log.touch("call", actor=OTHER)  # somebody else's call
    log.touch("web_visit", sales=False, actor=None, system="tracking")
    response = replay(log.facts, lambda at: terms())[0]
    assert response.outcome is None
    met = log.touch("meeting")
    response = replay(log.facts, lambda at: terms())[0]
    assert (response.outcome, response.ended_at, response.end_event_id) == (MET, met.at, met.id)
    assert response.business_seconds == 4 * 3600  # four touches, an hour apart
    assert response.breached_when_met is False


def test_a_touch_logged_by_an_integration_acts_for_the_owner():
    log = Log()
    log.mql()
    log.assign(OWNER)
    log.touch("call", actor=None, system="dialer")
    assert replay(log.facts, lambda at: terms())[0].outcome == MET


def test_accepting_meets_the_decision_and_a_still_running_response_clock():
    log = Log()
    log.mql()
    log.assign(OWNER)
    accepted = log.move("sal", hours=5)  # after the 4 hours of the response clock
    response, decision = replay(log.facts, lambda at: terms())
    assert response.outcome == decision.outcome == MET
    assert response.ended_at == decision.ended_at == accepted.at
    assert response.breached_when_met and not decision.breached_when_met


def test_rejecting_meets_the_decision_clock():
    log = Log()
    log.mql()
    log.assign(OWNER)
    log.touch()
    log.move("rejected")
    response, decision = replay(log.facts, lambda at: terms())
    assert (response.outcome, decision.outcome) == (MET, MET)
    assert response.ended_at < decision.ended_at


def test_recycling_cancels_both_clocks():
    log = Log()
    log.mql()
    log.assign(OWNER)
    log.move("recycled")
    clocks = replay(log.facts, lambda at: terms())
    assert [(c.outcome, c.cancel_reason) for c in clocks] == [(CANCELLED, "recycled")] * 2


def test_a_merge_cancels_the_duplicates_clocks():
    log = Log()
    log.mql()
    log.assign(OWNER)
    merge = Fact(99, "lead.merged", T0 + dt.timedelta(hours=3), {"merged_lead_id": 1}, 5, "", 42)
    clocks = replay(log.facts, lambda at: terms(), merged=merge)
    assert [(c.outcome, c.cancel_reason, c.ended_at) for c in clocks] == [
        (CANCELLED, "merged into lead 42", merge.at)
    ] * 2


def test_reassignment_restarts_the_clocks_for_the_new_owner():
    log = Log()
    log.mql()
    first = log.assign(OWNER)
    second = log.assign(OTHER)
    clocks = by_kind(replay(log.facts, lambda at: terms(RESTART)))
    assert clocks[(RESPONSE, first.id)].outcome == CANCELLED
    assert clocks[(RESPONSE, first.id)].cancel_reason == "reassigned"
    restarted = clocks[(RESPONSE, second.id)]
    assert (restarted.owner_id, restarted.outcome) == (OTHER, None)
    assert restarted.due_at == second.at + dt.timedelta(hours=4)


def test_reassignment_can_keep_the_clocks_running_for_the_new_owner():
    log = Log()
    log.mql()
    first = log.assign(OWNER)
    log.assign(OTHER)
    clocks = replay(log.facts, lambda at: terms(KEEP))
    assert [(c.start_event_id, c.owner_id, c.outcome) for c in clocks] == [
        (first.id, OTHER, None),
        (first.id, OTHER, None),
    ]
    # now only the new owner's touch counts
    log.touch(actor=OWNER)
    assert replay(log.facts, lambda at: terms(KEEP))[0].outcome is None
    log.touch(actor=OTHER)
    assert replay(log.facts, lambda at: terms(KEEP))[0].outcome == MET


def test_clocks_count_business_hours_of_the_agreements_calendar():
    berlin = Calendar.from_json(
        {
            "timezone": "Europe/Berlin",
            "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
            "country": "DE",
            "subdivision": "",
            "closed_days": [],
        }
    )
    log = Log()
    log.mql(at=dt.datetime(2026, 11, 27, 20, 0, tzinfo=UTC))  # Friday 21:00 in Berlin
    log.assign(OWNER, hours=0.5)
    response, decision = replay(log.facts, lambda at: terms(calendar=berlin))
    # Monday 09:00 Berlin (08:00 UTC) plus 4 hours; the decision's 16 hours end Tuesday 17:00
    assert response.due_at == dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert decision.due_at == dt.datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


def test_the_agreement_in_force_when_a_clock_starts_sets_its_terms():
    log = Log()
    log.mql()
    log.assign(OWNER)
    log.move("recycled")
    log.mql(hours=10)
    later = log.assign(OTHER)
    short = Terms(2, Decimal("1"), Decimal("2"), Decimal("0.5"), RESTART, ALWAYS)

    def terms_at(at):
        return short if at >= later.at else terms()

    clocks = by_kind(replay(log.facts, terms_at))
    assert clocks[(RESPONSE, later.id)].agreement_id == 2
    assert clocks[(RESPONSE, later.id)].due_at == later.at + dt.timedelta(hours=1)
    assert clocks[(RESPONSE, 2)].agreement_id == 1


def test_no_agreement_no_clock():
    log = Log()
    log.mql()
    log.assign(OWNER)
    assert replay(log.facts, lambda at: None) == []


def test_a_reassignment_delay_sets_when_a_breached_mql_moves_on():
    log = Log()
    log.mql()
    start = log.assign(OWNER)
    response = replay(log.facts, lambda at: terms(reassign_after=Decimal("2")))[0]
    assert response.reassign_at == start.at + dt.timedelta(hours=6)
    assert replay(log.facts, lambda at: terms())[0].reassign_at is None
