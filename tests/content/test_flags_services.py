"""Lead flags: who may raise, reply, resolve and reopen; the events and notifications of each
step; and that a flag never touches an SLA clock."""

import threading

import pytest
from django.db import connection, connections

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import Notification, Role
from content.flags.services import flag_comment, flag_raise, flag_reopen, flag_resolve
from content.models import FlagMessage, FlagStatus, LeadFlag
from leads import events
from leads.lifecycle import lead_move
from leads.models import EventType, LeadEvent, Stage
from leads.routing import lead_assign
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from tests.factories import CampaignFactory, LeadFactory, RepFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_mkt(db):
    return UserFactory(username="mia", first_name="Mia", last_name="Marketing", role=Role.MARKETER)


@pytest.fixture
def lead(rep, owner_mkt):
    return LeadFactory(owner=rep, campaign=CampaignFactory(marketing_owner=owner_mkt))


def _flag(lead, by, reason="wrong_routing", comment="Munich lead routed to Hamburg."):
    return flag_raise(lead=lead, by=by, reason=reason, comment=comment)


def _notified(user):
    return list(
        Notification.objects.filter(user=user, kind="lead_flag")
        .order_by("id")
        .values_list("title", flat=True)
    )


def _payloads(type):
    return list(
        LeadEvent.objects.filter(type=type).order_by("id").values_list("payload", flat=True)
    )


# --- raising ---------------------------------------------------------------------------------------


def test_a_rep_flags_his_lead_and_the_campaigns_marketing_owner_is_told(lead, rep, owner_mkt):
    flag = _flag(lead, rep)
    assert flag.status == FlagStatus.OPEN and flag.raised_by == rep
    assert flag.comment == "Munich lead routed to Hamburg."
    assert _payloads(EventType.FLAG_RAISED) == [{"flag_id": flag.pk, "reason": "wrong_routing"}]
    event = LeadEvent.objects.get(type=EventType.FLAG_RAISED)
    assert event.lead_id == lead.pk
    assert _notified(owner_mkt) == [f"Lead flagged (wrong routing): {lead.display_name}"]
    assert _notified(rep) == []  # the flagger is the owner: not told of his own flag
    note = Notification.objects.get(user=owner_mkt)
    assert note.url == f"/leads/{lead.pk}/#flag-{flag.pk}" and note.lead_id == lead.pk


def test_without_a_marketing_owner_every_marketing_manager_is_told(
    rep, marketing_manager, marketer
):
    other_manager = UserFactory(username="mm2", role=Role.MARKETING_MANAGER)
    lead = LeadFactory(owner=rep, campaign=None)
    _flag(lead, rep)
    assert len(_notified(marketing_manager)) == 1 and len(_notified(other_manager)) == 1
    assert _notified(marketer) == []


def test_a_sales_manager_flags_any_lead_and_the_owner_is_told(lead, rep, sales_manager):
    _flag(lead, sales_manager)
    assert _notified(rep) == [f"Lead flagged (wrong routing): {lead.display_name}"]


def test_a_rep_may_not_flag_a_lead_he_does_not_own(lead, other_rep):
    with pytest.raises(PermissionDenied, match="not assigned to you"):
        _flag(lead, other_rep)
    assert not LeadFlag.objects.exists()


@pytest.mark.parametrize("role", ["marketer", "marketing_manager", "outsider"])
def test_marketing_and_outsiders_may_not_flag(people, lead, role):
    with pytest.raises(PermissionDenied):
        _flag(lead, people[role])


def test_an_admin_flags_any_lead(lead, admin_user):
    assert _flag(lead, admin_user).raised_by == admin_user


@pytest.mark.parametrize(
    ("reason", "comment", "field"),
    [
        ("wrong_routing", "   ", "comment"),
        ("wrong_routing", None, "comment"),
        ("wrong_routing", "x" * 4001, "comment"),
        ("bogus", "text", "reason"),
        ("", "text", "reason"),
    ],
)
def test_a_flag_needs_a_known_reason_and_a_comment(lead, rep, reason, comment, field):
    with pytest.raises(DomainError) as caught:
        flag_raise(lead=lead, by=rep, reason=reason, comment=comment)
    assert caught.value.field == field
    assert (
        not LeadFlag.objects.exists()
        and not LeadEvent.objects.filter(type=EventType.FLAG_RAISED).exists()
    )


def test_one_open_flag_per_lead_and_reason(lead, rep, owner_mkt):
    first = _flag(lead, rep)
    with pytest.raises(DomainError, match="already has an open flag"):
        _flag(lead, rep)
    _flag(lead, rep, reason="wrong_data", comment="The phone number is the switchboard.")
    flag_resolve(flag=first, by=owner_mkt, outcome="rerouted")
    _flag(lead, rep)  # resolved: a new one may be raised
    assert LeadFlag.objects.filter(lead=lead).count() == 3


# --- the thread ------------------------------------------------------------------------------------


def test_a_reply_tells_every_other_participant_and_earlier_writer(
    lead, rep, owner_mkt, marketing_manager, sales_manager
):
    flag = _flag(lead, rep)
    Notification.objects.all().delete()
    message = flag_comment(flag=flag, by=owner_mkt, body="Which territory should it be?")
    assert FlagMessage.objects.get().author == owner_mkt
    assert _payloads(EventType.FLAG_COMMENTED) == [{"flag_id": flag.pk, "message_id": message.pk}]
    assert _notified(rep) == [f"Mia Marketing wrote on the flag on {lead.display_name}"]
    assert _notified(owner_mkt) == []
    # a manager joins: the participants hear of it, and from then on she does too
    flag_comment(flag=flag, by=marketing_manager, body="I'll check the rule.")
    assert len(_notified(rep)) == 2 and len(_notified(owner_mkt)) == 1
    flag_comment(flag=flag, by=rep, body="Bavaria, Munich office.")
    assert len(_notified(marketing_manager)) == 1 and len(_notified(owner_mkt)) == 2
    assert _notified(sales_manager) == []


def test_who_may_write_in_the_thread(lead, rep, other_rep, owner_mkt, people):
    flag = _flag(lead, rep)
    for role in ("marketer", "marketing_manager", "sales_manager", "admin"):
        flag_comment(flag=flag, by=people[role], body=f"from {role}")
    flag_comment(flag=flag, by=owner_mkt, body="from the marketing owner")
    with pytest.raises(PermissionDenied):
        flag_comment(flag=flag, by=other_rep, body="not mine")
    with pytest.raises(PermissionDenied):
        flag_comment(flag=flag, by=people["outsider"], body="nobody")
    assert FlagMessage.objects.count() == 5


def test_the_flagger_may_write_after_the_lead_moved_to_another_rep(lead, rep, other_rep):
    flag = _flag(lead, rep)
    lead.owner = other_rep
    lead.save(update_fields=["owner"])
    flag_comment(flag=flag, by=rep, body="It was mine when I flagged it.")
    flag_comment(flag=flag, by=other_rep, body="Now it is mine.")
    assert FlagMessage.objects.count() == 2


def test_an_empty_reply_is_refused(lead, rep):
    flag = _flag(lead, rep)
    with pytest.raises(DomainError) as caught:
        flag_comment(flag=flag, by=rep, body="  ")
    assert caught.value.field == "body" and not FlagMessage.objects.exists()


# --- resolving and reopening -------------------------------------------------------------------


def test_marketing_resolves_and_the_flagger_and_owner_are_told(lead, rep, sales_manager, owner_mkt):
    flag = _flag(lead, sales_manager)
    Notification.objects.all().delete()
    flag_resolve(flag=flag, by=owner_mkt, outcome="rerouted", resolution="Rule fixed.")
    flag.refresh_from_db()
    assert (flag.status, flag.outcome, flag.resolution, flag.resolved_by) == (
        FlagStatus.RESOLVED,
        "rerouted",
        "Rule fixed.",
        owner_mkt,
    )
    assert flag.resolved_at is not None
    assert _payloads(EventType.FLAG_RESOLVED) == [{"flag_id": flag.pk, "outcome": "rerouted"}]
    title = f"Flag resolved (rerouted): {lead.display_name}"
    assert _notified(sales_manager) == [title] and _notified(rep) == [title]
    assert _notified(owner_mkt) == []


@pytest.mark.parametrize("role", ["rep", "sales_manager", "outsider"])
def test_only_marketing_and_admins_resolve(people, lead, role, rep):
    flag = _flag(lead, rep)
    with pytest.raises(PermissionDenied):
        flag_resolve(flag=flag, by=people[role], outcome="fixed")
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN


@pytest.mark.parametrize("outcome", ["explained", "declined"])
def test_nothing_changes_only_with_a_reason(lead, rep, marketer, outcome):
    flag = _flag(lead, rep)
    with pytest.raises(DomainError) as caught:
        flag_resolve(flag=flag, by=marketer, outcome=outcome, resolution=" ")
    assert caught.value.field == "resolution"
    flag_resolve(flag=flag, by=marketer, outcome=outcome, resolution="That is the HQ's number.")
    assert flag.status == FlagStatus.RESOLVED


def test_an_unknown_outcome_and_a_second_resolution_are_refused(lead, rep, marketer, admin_user):
    flag = _flag(lead, rep)
    with pytest.raises(DomainError) as caught:
        flag_resolve(flag=flag, by=marketer, outcome="done")
    assert caught.value.field == "outcome"
    flag_resolve(flag=flag, by=admin_user, outcome="fixed")
    with pytest.raises(DomainError, match="already resolved"):
        flag_resolve(flag=flag, by=marketer, outcome="merged")
    assert LeadEvent.objects.filter(type=EventType.FLAG_RESOLVED).count() == 1


def test_a_resolved_flag_takes_no_reply_until_its_flagger_reopens_it(
    lead, rep, other_rep, owner_mkt, marketing_manager
):
    flag = _flag(lead, rep)
    flag_resolve(flag=flag, by=marketing_manager, outcome="fixed", resolution="Phone fixed.")
    with pytest.raises(DomainError, match="resolved"):
        flag_comment(flag=flag, by=owner_mkt, body="one more thing")
    with pytest.raises(PermissionDenied):
        flag_reopen(flag=flag, by=owner_mkt, body="marketing may not reopen")
    Notification.objects.all().delete()
    message = flag_reopen(flag=flag, by=rep, body="Still the switchboard number.")
    flag.refresh_from_db()
    assert (flag.status, flag.outcome, flag.resolution, flag.resolved_by, flag.resolved_at) == (
        FlagStatus.OPEN,
        "",
        "",
        None,
        None,
    )
    assert message.body == "Still the switchboard number."
    assert _payloads(EventType.FLAG_COMMENTED)[-1] == {"flag_id": flag.pk, "message_id": message.pk}
    # whoever resolved it and the marketing owner hear of it, once each
    assert len(_notified(marketing_manager)) == 1 and len(_notified(owner_mkt)) == 1
    flag_comment(flag=flag, by=owner_mkt, body="Looking again.")
    with pytest.raises(DomainError, match="is open"):
        flag_reopen(flag=flag, by=rep, body="again")


# --- SLA clocks ------------------------------------------------------------------------------------


def test_a_flag_never_touches_a_running_response_clock(marketer, sales_manager, owner_mkt):
    rep = RepFactory(username="clockrep")
    lead = LeadFactory(stage=Stage.NURTURING, campaign=CampaignFactory(marketing_owner=owner_mkt))
    lead_move(lead=lead, to=Stage.MQL, by=marketer)
    lead_assign(lead=lead, rep=rep, by=sales_manager)
    events.outbox_dispatch()
    clock = SlaClock.objects.get(lead=lead, kind=ClockKind.RESPONSE)
    assert clock.status == ClockStatus.PENDING
    before = (clock.status, clock.due_at, clock.warn_at, clock.ended_at, clock.end_event_id)

    flag = flag_raise(lead=lead, by=rep, reason="wrong_data", comment="Wrong phone.")
    events.outbox_dispatch()
    flag_comment(flag=flag, by=owner_mkt, body="Which one is right?")
    flag_comment(flag=flag, by=rep, body="The mobile.")
    events.outbox_dispatch()
    flag_resolve(flag=flag, by=owner_mkt, outcome="fixed", resolution="Fixed.")
    events.outbox_dispatch()

    clock.refresh_from_db()
    assert (clock.status, clock.due_at, clock.warn_at, clock.ended_at, clock.end_event_id) == before
    lead.refresh_from_db()
    assert lead.first_sales_touch_at is None
    assert SlaClock.objects.filter(lead=lead).count() == 2  # response and decision, no new one


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two connections racing for a row need PostgreSQL; SQLite serialises every write",
)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_raise_one_flag(rep, owner_mkt):
    lead = LeadFactory(owner=rep, campaign=CampaignFactory(marketing_owner=owner_mkt))
    barrier = threading.Barrier(2)
    outcomes = []

    def click():
        try:
            barrier.wait(timeout=10)
            _flag(lead, rep)
            outcomes.append("raised")
        except DomainError as error:
            outcomes.append(error.message)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes.count("raised") == 1 and len(outcomes) == 2
    assert any("already has an open flag" in o for o in outcomes)
    assert LeadFlag.objects.filter(lead=lead).count() == 1
    assert Notification.objects.filter(user=owner_mkt).count() == 1
