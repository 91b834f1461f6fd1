"""SLA clocks kept from the lead events through the outbox, checked by sla_verify, and flagged
(warned, breached, escalated) exactly once."""

import datetime as dt
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from alignment.lib.business_time import Calendar
from alignment.models import Notification
from leads import events
from leads.lifecycle import lead_move
from leads.models import LeadEvent, Stage
from leads.routing import lead_assign
from leads.services import touchpoint_record
from sla.clocks import flagging
from sla.clocks.flagging import clocks_flag
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.clocks.services import clocks_rebuild, clocks_verify
from sla.selectors import agreement_active
from tests.factories import AssignmentRuleFactory, LeadFactory, PoolMemberFactory

pytestmark = pytest.mark.django_db


def dispatch():
    events.outbox_dispatch()


def mql_assigned_to(rep, sales_manager, marketer, **lead):
    item = LeadFactory(stage=Stage.NURTURING, **lead)
    lead_move(lead=item, to=Stage.MQL, by=marketer)
    lead_assign(lead=item, rep=rep, by=sales_manager)
    dispatch()
    return item


def clocks(lead):
    return {c.kind: c for c in SlaClock.objects.filter(lead=lead, ended_at__isnull=True)}


def test_assigning_an_mql_starts_both_clocks_in_the_agreements_business_hours(
    rep, sales_manager, marketer
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    agreement = agreement_active()
    calendar = Calendar.from_json(agreement.calendar)
    started = LeadEvent.objects.filter(lead=lead, type="lead.assigned").get()
    running = clocks(lead)
    assert set(running) == {ClockKind.RESPONSE, ClockKind.DECISION}
    response = running[ClockKind.RESPONSE]
    assert (response.owner, response.agreement, response.status) == (
        rep,
        agreement,
        ClockStatus.PENDING,
    )
    assert response.started_at == started.occurred_at
    assert response.due_at == calendar.add(started.occurred_at, dt.timedelta(hours=4))
    assert response.warn_at == calendar.add(started.occurred_at, dt.timedelta(hours=3))
    assert running[ClockKind.DECISION].due_at == calendar.add(
        started.occurred_at, dt.timedelta(hours=16)
    )


def test_the_owners_call_meets_the_response_clock_and_accepting_the_decision_clock(
    rep, sales_manager, marketer
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    touchpoint_record(lead=lead, kind="note", by=rep)
    dispatch()
    assert set(clocks(lead)) == {ClockKind.RESPONSE, ClockKind.DECISION}
    touchpoint_record(lead=lead, kind="call", by=rep)
    dispatch()
    assert set(clocks(lead)) == {ClockKind.DECISION}
    response = SlaClock.objects.get(lead=lead, kind=ClockKind.RESPONSE)
    assert response.status == ClockStatus.MET and response.met_at is not None
    lead_move(lead=lead, to=Stage.SAL, by=rep)
    dispatch()
    assert clocks(lead) == {}
    assert SlaClock.objects.get(lead=lead, kind=ClockKind.DECISION).status == ClockStatus.MET


def test_marketing_touches_queue_nothing_for_the_clocks(rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    before = events.OutboxEntry.objects.count()
    touchpoint_record(lead=lead, kind="web_visit", system="tracking")
    assert events.OutboxEntry.objects.count() == before
    touchpoint_record(lead=lead, kind="call", by=rep)
    assert events.OutboxEntry.objects.filter(reaction__startswith="sla.").count() > 0


def test_recycling_cancels_and_reassigning_restarts(rep, other_rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    first = clocks(lead)[ClockKind.RESPONSE]
    lead_assign(lead=lead, rep=other_rep, by=sales_manager)
    dispatch()
    first.refresh_from_db()
    assert (first.status, first.cancel_reason) == (ClockStatus.CANCELLED, "reassigned")
    assert clocks(lead)[ClockKind.RESPONSE].owner == other_rep
    lead_move(lead=lead, to=Stage.RECYCLED, by=other_rep, reason="not_ready")
    dispatch()
    assert clocks(lead) == {}
    assert set(SlaClock.objects.filter(lead=lead).values_list("status", flat=True)) == {
        ClockStatus.CANCELLED
    }


def test_sla_verify_agrees_with_the_reaction_and_finds_and_fixes_a_tampered_clock(
    rep, sales_manager, marketer
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    touchpoint_record(lead=lead, kind="call", by=rep)
    other = mql_assigned_to(rep, sales_manager, marketer)
    dispatch()
    assert clocks_verify() == (2, [])
    out = StringIO()
    call_command("sla_verify", stdout=out)
    assert "2 leads checked: every clock is what the events say." in out.getvalue()

    SlaClock.objects.filter(lead=other, kind=ClockKind.DECISION).update(
        due_at=timezone.now() + dt.timedelta(days=30)
    )
    SlaClock.objects.filter(lead=lead, kind=ClockKind.RESPONSE).delete()
    checked, differences = clocks_verify()
    assert {(d.lead_id, d.kind) for d in differences} == {
        (other.pk, ClockKind.DECISION),
        (lead.pk, ClockKind.RESPONSE),
    }
    with pytest.raises(CommandError, match="2 differences on 2 of 2 leads"):
        call_command("sla_verify", stdout=StringIO())
    call_command("sla_verify", "--fix", stdout=StringIO())
    assert clocks_verify() == (2, [])


def test_flagging_warns_then_breaches_each_clock_once_and_notifies_rep_and_manager(
    rep, sales_manager, marketer
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    response = clocks(lead)[ClockKind.RESPONSE]
    result = clocks_flag(now=response.warn_at)
    assert result.warned == [response.pk] and result.breached == []
    assert clocks_flag(now=response.warn_at).warned == []
    response.refresh_from_db()
    assert response.status == ClockStatus.WARNED and response.warned_at == response.warn_at
    # besides the assignment's own notification (leads.routing.lead_assign)
    assert list(
        Notification.objects.exclude(kind="lead.assigned").values_list("user__username", "kind")
    ) == [("rep", "sla.warned")]

    result = clocks_flag(now=response.due_at)
    assert result.breached == [response.pk]
    assert clocks_flag(now=response.due_at + dt.timedelta(minutes=1)).breached == []
    breached = Notification.objects.filter(kind="sla.breached")
    assert sorted(breached.values_list("user__username", flat=True)) == ["rep", "sales_manager"]
    assert all(n.lead_id == lead.pk and n.url == f"/leads/{lead.pk}/" for n in breached)
    # what the job marked survives a rewrite from the events, and verify agrees with it
    clocks_rebuild(lead_ids=[lead.pk])
    response.refresh_from_db()
    assert response.status == ClockStatus.BREACHED and response.running
    assert clocks_verify()[1] == []


def test_a_manager_is_not_told_of_a_breach_when_the_agreement_says_so(rep, sales_manager, marketer):
    agreement = agreement_active()
    type(agreement).objects.filter(pk=agreement.pk).update(notify_manager_on_breach=False)
    lead = mql_assigned_to(rep, sales_manager, marketer)
    clocks_flag(now=clocks(lead)[ClockKind.DECISION].due_at)
    assert set(Notification.objects.filter(kind="sla.breached").values_list("user", flat=True)) == {
        rep.pk
    }


def test_a_breached_mql_goes_to_the_next_eligible_rep_after_the_agreed_delay(
    rep, other_rep, sales_manager, marketer
):
    agreement = agreement_active()
    type(agreement).objects.filter(pk=agreement.pk).update(reassign_after_hours=Decimal("2"))
    lead = mql_assigned_to(rep, sales_manager, marketer)
    # the pool the escalation routes by (made after the hand assignment, which it would preempt)
    rule = AssignmentRuleFactory()
    PoolMemberFactory(rule=rule, rep=rep)
    PoolMemberFactory(rule=rule, rep=other_rep)
    response = clocks(lead)[ClockKind.RESPONSE]
    assert response.reassign_at > response.due_at
    assert clocks_flag(now=response.due_at).reassigned == []
    result = clocks_flag(now=response.reassign_at)
    assert result.reassigned == [lead.pk]
    lead.refresh_from_db()
    assert lead.owner == other_rep
    dispatch()
    assert clocks(lead)[ClockKind.RESPONSE].owner == other_rep
    assert Notification.objects.filter(user=other_rep, kind="sla.reassigned").count() == 1
    # claimed once: the same moment again reassigns nothing (the new owner's clocks are new)
    assert clocks_flag(now=response.reassign_at).reassigned == []


@pytest.mark.django_db(transaction=True)
def test_two_flagging_runs_at_once_claim_each_clock_once(rep, sales_manager, marketer):
    if connection.vendor != "postgresql":
        pytest.skip("two connections racing for a row need PostgreSQL; SQLite serialises writes")
    leads = [mql_assigned_to(rep, sales_manager, marketer) for _ in range(30)]
    due = max(c.due_at for lead in leads for c in clocks(lead).values())
    results, barrier = [], threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            results.append(clocks_flag(now=due))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    breached = [i for r in results for i in r.breached]
    assert sorted(breached) == sorted(SlaClock.objects.values_list("id", flat=True))
    assert len(breached) == len(set(breached)) == 60
    assert Notification.objects.filter(kind="sla.breached").count() == 60 * 2


def test_a_run_that_dies_before_commit_leaves_the_clock_for_the_next_run(
    rep, sales_manager, marketer, monkeypatch
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    response = clocks(lead)[ClockKind.RESPONSE]

    def die(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(flagging, "_notify_breached", die)
    with pytest.raises(RuntimeError):
        clocks_flag(now=response.due_at)
    response.refresh_from_db()
    assert response.status == ClockStatus.PENDING and response.breached_at is None
    monkeypatch.undo()
    assert response.pk in clocks_flag(now=response.due_at).breached
    assert Notification.objects.filter(kind="sla.breached", user=rep).count() == 1


def test_the_beat_schedule_flags_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sla-flag-breaches"]
    assert entry["task"] == "sla.flag_breaches"
    assert entry["schedule"].minute == set(range(60))
    assert entry["options"]["expires"] < 60


def test_a_clock_is_reassigned_only_after_a_run_has_breached_it(
    rep, other_rep, sales_manager, marketer
):
    agreement = agreement_active()
    type(agreement).objects.filter(pk=agreement.pk).update(reassign_after_hours=Decimal("1"))
    lead = mql_assigned_to(rep, sales_manager, marketer)
    rule = AssignmentRuleFactory()
    PoolMemberFactory(rule=rule, rep=other_rep)
    response = clocks(lead)[ClockKind.RESPONSE]
    # the job was down: the first run past the delay breaches (and tells the rep) first
    first = clocks_flag(now=response.reassign_at)
    assert response.pk in first.breached and first.reassigned == []
    second = clocks_flag(now=response.reassign_at)
    assert second.reassigned == [lead.pk]
    lead.refresh_from_db()
    assert lead.owner == other_rep
