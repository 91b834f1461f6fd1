"""The routing services behind the People and routing page, and the read-only preview."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alignment.lib.business_time import Calendar
from alignment.lib.errors import PermissionDenied
from alignment.models import Notification, Role
from leads.models import AssignmentRule, Lead, PoolMember, Stage
from leads.people.selectors import hours_in_zone, reps_overview
from leads.routing import (
    RoutingError,
    condition_words,
    lead_route,
    rep_profile_update,
    routing_preview,
    routing_rule_activate,
    routing_rule_delete,
    routing_rule_move,
    routing_rule_save,
    rule_failure,
)
from tests.factories import AssignmentRuleFactory, LeadFactory, PoolMemberFactory, RepFactory

pytestmark = pytest.mark.django_db


def _open_leads(rep, n: int) -> None:
    Lead.objects.bulk_create(
        Lead(email=f"open-{rep.pk}-{i}@x.example", stage=Stage.SAL, owner=rep) for i in range(n)
    )


# --- rep profile --------------------------------------------------------------------------------


def test_a_manager_changes_a_reps_profile_and_the_rep_is_told(rep, sales_manager):
    changed = rep_profile_update(
        rep=rep, by=sales_manager, available=False, capacity=12, working_timezone="Asia/Tokyo"
    )
    rep.refresh_from_db()
    assert sorted(changed) == ["available", "capacity", "working_timezone"]
    assert (rep.available, rep.capacity, rep.working_timezone) == (False, 12, "Asia/Tokyo")
    note = Notification.objects.get(user=rep, kind="routing.profile")
    assert "away" in note.title and "capacity 12" in note.title and str(sales_manager) in note.title


def test_only_changed_fields_are_saved_and_nothing_changed_writes_nothing(rep, sales_manager):
    assert rep_profile_update(rep=rep, by=sales_manager, capacity=rep.capacity) == []
    assert not Notification.objects.filter(user=rep).exists()
    assert rep_profile_update(rep=rep, by=sales_manager, capacity=3, available=True) == ["capacity"]


def test_a_rep_may_set_only_their_own_availability(rep, other_rep):
    assert rep_profile_update(rep=rep, by=rep, available=False) == ["available"]
    rep.refresh_from_db()
    assert rep.available is False
    # no notification for one's own change
    assert not Notification.objects.filter(user=rep).exists()
    with pytest.raises(PermissionDenied, match="your own availability"):
        rep_profile_update(rep=rep, by=rep, capacity=500)
    with pytest.raises(PermissionDenied):
        rep_profile_update(rep=other_rep, by=rep, available=False)
    other_rep.refresh_from_db()
    assert other_rep.available is True


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"capacity": -1}, "capacity"),
        ({"capacity": "ten"}, "capacity"),
        ({"working_timezone": "Mars/Olympus"}, "working_timezone"),
        ({"working_timezone": ""}, "working_timezone"),
    ],
)
def test_bad_profile_values_are_refused_and_nothing_is_written(rep, sales_manager, changes, field):
    with pytest.raises(RoutingError) as refused:
        rep_profile_update(rep=rep, by=sales_manager, available=False, **changes)
    assert refused.value.field == field
    rep.refresh_from_db()
    assert rep.available is True


def test_a_marketer_cannot_be_given_a_routing_profile(marketer, sales_manager):
    with pytest.raises(RoutingError, match="not an active sales rep"):
        rep_profile_update(rep=marketer, by=sales_manager, capacity=5)


# --- rules --------------------------------------------------------------------------------------


def test_save_creates_a_rule_last_with_its_pool(sales_manager, rep, other_rep):
    AssignmentRuleFactory(name="First", position=4)
    rule = routing_rule_save(
        by=sales_manager,
        name="DACH",
        active=True,
        conditions=[{"field": "country", "op": "in", "value": ["DE", "AT"]}],
        members={rep.pk: 2, other_rep.pk: 1},
    )
    assert rule.position == 5
    assert dict(rule.members.values_list("rep_id", "weight")) == {rep.pk: 2, other_rep.pk: 1}


def test_editing_keeps_pass_values_and_a_new_member_starts_at_the_clock(
    sales_manager, rep, other_rep
):
    rule = AssignmentRuleFactory(name="All", virtual_time=7.5)
    PoolMemberFactory(rule=rule, rep=rep, weight=1, pass_value=8.5, assigned_count=9)
    routing_rule_save(
        by=sales_manager,
        rule=rule,
        name="All leads",
        active=True,
        conditions=[],
        members={rep.pk: 3, other_rep.pk: 1},
    )
    kept = PoolMember.objects.get(rule=rule, rep=rep)
    new = PoolMember.objects.get(rule=rule, rep=other_rep)
    assert (kept.weight, kept.pass_value, kept.assigned_count) == (3, 8.5, 9)
    assert (new.pass_value, new.assigned_count) == (7.5, 0)
    # removing a member deletes only that member
    routing_rule_save(
        by=sales_manager, rule=rule, name="All leads", active=True, conditions=[], members={}
    )
    assert not PoolMember.objects.filter(rule=rule).exists()


def test_a_bad_condition_or_a_taken_name_is_refused_and_nothing_changes(sales_manager, rep):
    rule = AssignmentRuleFactory(name="Keep", conditions=[])
    AssignmentRuleFactory(name="Taken")
    with pytest.raises(RoutingError, match="Condition 1"):
        routing_rule_save(
            by=sales_manager,
            rule=rule,
            name="Keep",
            active=True,
            conditions=[{"field": "company_size", "op": "gt", "value": "big"}],
            members={rep.pk: 1},
        )
    with pytest.raises(RoutingError, match="already a rule called") as taken:
        routing_rule_save(
            by=sales_manager, rule=rule, name="taken", active=True, conditions=[], members={}
        )
    assert taken.value.field == "name"
    rule.refresh_from_db()
    assert (rule.name, rule.conditions, rule.members.count()) == ("Keep", [], 0)


def test_weights_and_members_are_checked(sales_manager, marketer, rep):
    with pytest.raises(RoutingError, match="from 0 to 100"):
        routing_rule_save(
            by=sales_manager, name="R", active=True, conditions=[], members={rep.pk: 101}
        )
    with pytest.raises(RoutingError, match="Only active sales reps"):
        routing_rule_save(
            by=sales_manager, name="R", active=True, conditions=[], members={marketer.pk: 1}
        )
    assert not AssignmentRule.objects.filter(name="R").exists()


def test_rule_services_need_routing_manage(rep):
    rule = AssignmentRuleFactory()
    for call in (
        lambda: routing_rule_save(by=rep, name="x", active=True, conditions=[], members={}),
        lambda: routing_rule_delete(rule=rule, by=rep),
        lambda: routing_rule_move(rule=rule, by=rep, up=True),
        lambda: routing_rule_activate(rule=rule, by=rep, active=False),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert AssignmentRule.objects.filter(pk=rule.pk, active=True).exists()


def test_move_swaps_neighbours_even_with_equal_positions(sales_manager):
    a = AssignmentRuleFactory(name="A", position=0)
    b = AssignmentRuleFactory(name="B", position=0)
    c = AssignmentRuleFactory(name="C", position=0)
    routing_rule_move(rule=c, by=sales_manager, up=True)
    assert list(AssignmentRule.objects.values_list("name", flat=True)) == ["A", "C", "B"]
    routing_rule_move(rule=a, by=sales_manager, up=True)  # already first: stays
    routing_rule_move(rule=a, by=sales_manager, up=False)
    assert list(AssignmentRule.objects.values_list("name", flat=True)) == ["C", "A", "B"]
    assert b.pk


def test_deactivate_and_delete(sales_manager, rep):
    rule = AssignmentRuleFactory(name="Gone")
    PoolMemberFactory(rule=rule, rep=rep)
    routing_rule_activate(rule=rule, by=sales_manager, active=False)
    assert not AssignmentRule.objects.get(pk=rule.pk).active
    routing_rule_delete(rule=rule, by=sales_manager)
    assert not AssignmentRule.objects.filter(pk=rule.pk).exists()
    assert not PoolMember.objects.filter(rep=rep).exists()


# --- why and the preview -----------------------------------------------------------------------


def test_conditions_read_as_sentences():
    assert condition_words({"field": "country", "op": "in", "value": ["DE", "AT"]}) == (
        "country is one of DE, AT"
    )
    assert condition_words({"field": "company_size", "op": "between", "value": [10, 50]}) == (
        "company size is between 10 and 50"
    )
    assert condition_words({"field": "attributes.segment", "op": "exists", "value": False}) == (
        "attribute “segment” is missing"
    )


def test_rule_failure_names_the_condition_that_failed():
    rule = AssignmentRule(
        name="big DACH",
        conditions=[
            {"field": "country", "op": "eq", "value": "DE"},
            {"field": "company_size", "op": "gte", "value": 500},
        ],
    )
    assert rule_failure(rule=rule, lead=Lead(country="de", company_size=900)) is None
    assert rule_failure(rule=rule, lead=Lead(country="DE", company_size=20)) == (
        "Not company size is at least 500: the lead's company size is “20”."
    )
    assert "is missing" in rule_failure(rule=rule, lead=Lead(country="", company_size=900))


def test_preview_explains_and_writes_nothing(rep, other_rep):
    away = RepFactory(username="away", available=False)
    full = RepFactory(username="full", capacity=1)
    _open_leads(full, 1)
    parked = RepFactory(username="parked")
    us = AssignmentRuleFactory(
        name="US", position=0, conditions=[{"field": "country", "op": "eq", "value": "US"}]
    )
    PoolMemberFactory(rule=us, rep=rep)
    dach = AssignmentRuleFactory(name="DACH", position=1, virtual_time=2.0)
    for member, weight in ((away, 1), (full, 1), (parked, 0), (other_rep, 1)):
        PoolMemberFactory(rule=dach, rep=member, weight=weight, pass_value=1.0)
    lead = LeadFactory(country="DE", stage=Stage.MQL)
    before = list(PoolMember.objects.values_list("id", "pass_value", "assigned_count"))

    with CaptureQueriesContext(connection) as queries:
        choice = routing_preview(lead=lead)
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "UPDATE" not in sql and "INSERT" not in sql and "FOR UPDATE" not in sql

    assert [c.rule.name for c in choice.rules] == ["US", "DACH"]
    assert choice.rules[0].failure.startswith("Not country is US")
    assert (choice.rule.name, choice.member.rep) == ("DACH", other_rep)
    skipped = {m.member.rep.username: m.skipped for m in choice.rules[1].members}
    assert skipped["away"] == "away"
    assert skipped["full"].startswith("full (1 of 1")
    assert skipped["parked"].startswith("weight 0")
    assert skipped["other_rep"] is None
    lead.refresh_from_db()
    assert lead.owner_id is None
    assert list(PoolMember.objects.values_list("id", "pass_value", "assigned_count")) == before
    assert AssignmentRule.objects.get(pk=dach.pk).virtual_time == 2.0


def test_preview_and_routing_pick_the_same_rep_in_turn(rep, other_rep):
    rule = AssignmentRuleFactory(name="All")
    PoolMemberFactory(rule=rule, rep=rep, weight=2)
    PoolMemberFactory(rule=rule, rep=other_rep, weight=1)
    for i in range(6):
        lead = Lead.objects.create(email=f"turn{i}@x.example", stage=Stage.MQL)
        predicted = routing_preview(lead=lead).member.rep
        assert lead_route(lead=lead).rep == predicted
    counts = dict(PoolMember.objects.values_list("rep__username", "assigned_count"))
    assert counts == {"rep": 4, "other_rep": 2}


def test_an_imagined_lead_can_be_previewed(rep):
    rule = AssignmentRuleFactory(
        name="Enterprise", conditions=[{"field": "attributes.segment", "op": "eq", "value": "ent"}]
    )
    PoolMemberFactory(rule=rule, rep=rep)
    assert routing_preview(lead=Lead(attributes={"segment": "ENT"})).member.rep == rep
    assert routing_preview(lead=Lead(attributes={})).member is None


# --- working hours --------------------------------------------------------------------------------


def test_working_hours_are_shown_in_the_reps_zone():
    calendar = Calendar.from_json(
        {"timezone": "Europe/Berlin", "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue")}}
    )
    winter = date(2025, 1, 15)
    assert hours_in_zone(calendar, ZoneInfo("America/New_York"), week_of=winter) == [
        "Mon–Tue 03:00–11:00"
    ]
    # Tokyo is 8 hours ahead in winter: the shift ends after local midnight
    assert hours_in_zone(calendar, ZoneInfo("Asia/Tokyo"), week_of=winter) == [
        "Mon–Tue 17:00–01:00 (next day)"
    ]


def test_reps_overview_counts_open_leads_and_marks_full(rep, other_rep, marketer):
    rep.capacity = 2
    rep.working_timezone = "America/New_York"
    rep.save()
    _open_leads(rep, 2)
    calendar = Calendar.from_json(
        {"timezone": "Europe/Berlin", "hours": {"wed": [["09:00", "17:00"]]}}
    )
    now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Berlin
    rows = {r.rep.username: r for r in reps_overview(now=now, calendar=calendar)}
    assert set(rows) == {"rep", "other_rep"}
    assert (rows["rep"].open_leads, rows["rep"].full) == (2, True)
    assert (rows["other_rep"].open_leads, rows["other_rep"].full) == (0, False)
    assert rows["rep"].local_now.hour == 4
    assert rows["rep"].hours == ["Wed 03:00–11:00"]
    assert rows["rep"].in_hours is True
    assert marketer.role == Role.MARKETER
