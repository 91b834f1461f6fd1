"""The People and routing pages: who may open them, the forms and their errors in place."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import AssignmentRule, PoolMember, Stage
from tests.factories import AssignmentRuleFactory, LeadFactory, PoolMemberFactory

pytestmark = pytest.mark.django_db


def _rule_post(name: str, rows: list[dict], members: dict) -> dict:
    data = {
        "name": name,
        "active": "on",
        "cond-TOTAL_FORMS": str(len(rows)),
        "cond-INITIAL_FORMS": "0",
        "cond-MIN_NUM_FORMS": "0",
        "cond-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"cond-{i}-{key}"] = value
    for pk, weight in members.items():
        data[f"pool-in_{pk}"] = "on"
        data[f"pool-weight_{pk}"] = str(weight)
    return data


@pytest.mark.parametrize("who", ["rep", "marketer", "marketing_manager"])
def test_people_page_is_a_readable_403_for_others(client, people, who):
    client.force_login(people[who])
    response = client.get("/people/")
    assert response.status_code == 403
    assert "for sales managers and admins" in response.content.decode()


@pytest.mark.parametrize("who", ["sales_manager", "admin"])
def test_managers_and_admins_see_reps_rules_and_the_tester(client, people, rep, who):
    rule = AssignmentRuleFactory(
        name="DACH", conditions=[{"field": "country", "op": "in", "value": ["DE", "AT"]}]
    )
    PoolMemberFactory(rule=rule, rep=rep, weight=3)
    client.force_login(people[who])
    page = client.get("/people/").content.decode()
    assert "0 of 50" in page
    assert "When country is one of DE, AT" in page
    assert "weight 3" in page
    assert "Which rule and rep would this lead get?" in page


def test_the_nav_shows_people_to_managers_and_my_availability_to_reps(client, rep, sales_manager):
    client.force_login(sales_manager)
    page = client.get("/people/").content.decode()
    assert ">People</a>" in page and "Sales feedback" not in page
    client.force_login(rep)
    page = client.get("/people/me/").content.decode()
    assert ">My availability</a>" in page and ">People</a>" not in page


def test_a_rep_sets_themselves_away_and_back(client, rep):
    client.force_login(rep)
    response = client.post(f"/people/reps/{rep.pk}/availability/", {"available": "0", "next": "me"})
    assert response.status_code == 302 and response["Location"] == "/people/me/"
    rep.refresh_from_db()
    assert rep.available is False
    assert "You are <strong>away</strong>" in client.get("/people/me/").content.decode()


def test_a_rep_cannot_set_another_rep_away(client, rep, other_rep):
    client.force_login(rep)
    response = client.post(f"/people/reps/{other_rep.pk}/availability/", {"available": "0"})
    other_rep.refresh_from_db()
    assert other_rep.available is True
    assert response.status_code == 302 and response["Location"] == "/people/me/"
    assert "may set your own availability" in client.get("/people/me/").content.decode()


def test_the_rep_form_shows_errors_in_place(client, sales_manager, rep):
    client.force_login(sales_manager)
    response = client.post(
        f"/people/reps/{rep.pk}/",
        {"available": "on", "capacity": "-2", "working_timezone": "Nowhere/Land"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "“Nowhere/Land” is not a time zone" in page
    assert "greater than or equal to 0" in page
    response = client.post(
        f"/people/reps/{rep.pk}/", {"capacity": "7", "working_timezone": "Europe/Lisbon"}
    )
    assert response.status_code == 302
    rep.refresh_from_db()
    assert (rep.available, rep.capacity, rep.working_timezone) == (False, 7, "Europe/Lisbon")


def test_a_bad_condition_is_shown_on_its_row_and_nothing_is_saved(client, sales_manager, rep):
    client.force_login(sales_manager)
    rows = [
        {"field": "country", "op": "in", "value": "DE, AT"},
        {"field": "company_size", "op": "gt", "value": "large"},
    ]
    response = client.post("/people/rules/new/", _rule_post("DACH big", rows, {rep.pk: 1}))
    assert response.status_code == 400
    page = response.content.decode()
    assert "This condition needs a number" in page
    # the error sits in the second row, not the first
    first, second = page.split('<li class="condition-row')[1:3]
    assert "This condition" not in first
    assert "This condition needs a number" in second
    assert not AssignmentRule.objects.filter(name="DACH big").exists()


def test_a_rule_is_created_from_the_form_and_edited(client, sales_manager, rep, other_rep):
    client.force_login(sales_manager)
    rows = [
        {"field": "country", "op": "in", "value": "DE, AT"},
        {"field": "company_size", "op": "between", "value": "10, 500"},
        {"field": "attribute", "attribute": "segment", "op": "exists", "value": "yes"},
        {},
    ]
    response = client.post(
        "/people/rules/new/", _rule_post("DACH", rows, {rep.pk: 2, other_rep.pk: 0})
    )
    assert response.status_code == 302
    rule = AssignmentRule.objects.get(name="DACH")
    assert rule.conditions == [
        {"field": "country", "op": "in", "value": ["DE", "AT"]},
        {"field": "company_size", "op": "between", "value": [10, 500]},
        {"field": "attributes.segment", "op": "exists", "value": True},
    ]
    assert dict(PoolMember.objects.filter(rule=rule).values_list("rep_id", "weight")) == {
        rep.pk: 2,
        other_rep.pk: 0,
    }
    edit = client.get(f"/people/rules/{rule.pk}/").content.decode()
    assert 'value="DE, AT"' in edit and 'value="10, 500"' in edit and 'value="segment"' in edit


def test_move_activate_and_delete_from_the_page(client, sales_manager):
    a = AssignmentRuleFactory(name="A", position=0)
    b = AssignmentRuleFactory(name="B", position=1)
    client.force_login(sales_manager)
    client.post(f"/people/rules/{b.pk}/move/", {"direction": "up"})
    assert list(AssignmentRule.objects.values_list("name", flat=True)) == ["B", "A"]
    client.post(f"/people/rules/{a.pk}/activate/", {"active": "0"})
    assert AssignmentRule.objects.get(pk=a.pk).active is False
    client.post(f"/people/rules/{a.pk}/delete/")
    assert list(AssignmentRule.objects.values_list("name", flat=True)) == ["B"]


def test_a_rep_cannot_change_rules_by_crafted_posts(client, rep):
    rule = AssignmentRuleFactory(name="A")
    client.force_login(rep)
    assert client.post(f"/people/rules/{rule.pk}/delete/").status_code == 403
    assert client.post("/people/rules/new/", _rule_post("X", [], {})).status_code == 403
    assert AssignmentRule.objects.filter(pk=rule.pk).exists()


def test_the_tester_reads_an_existing_lead_by_email_and_writes_nothing(client, sales_manager, rep):
    rule = AssignmentRuleFactory(
        name="Germany", conditions=[{"field": "country", "op": "eq", "value": "DE"}]
    )
    PoolMemberFactory(rule=rule, rep=rep)
    lead = LeadFactory(email="anna@acme.example", country="DE", stage=Stage.MQL)
    client.force_login(sales_manager)
    page = client.get("/people/", {"test": "1", "lead": "ANNA@acme.example"}).content.decode()
    assert f"would go to <strong>{rep}</strong> by the rule <strong>Germany</strong>" in page
    lead.refresh_from_db()
    assert lead.owner_id is None
    assert PoolMember.objects.get(rule=rule).assigned_count == 0
    page = client.get("/people/", {"test": "1", "lead": "nobody@x.example"}).content.decode()
    assert "No lead has the number or email" in page
    LeadFactory(email="b@x.example", company="Umbrella GmbH", country="DE", stage=Stage.MQL)
    page = client.get("/people/", {"test": "1", "lead": "umbrella"}).content.decode()
    assert f"would go to <strong>{rep}</strong>" in page
    LeadFactory(email="c@x.example", company="Umbrella AG")
    page = client.get("/people/", {"test": "1", "lead": "umbrella"}).content.decode()
    assert "fits several leads" in page


def test_the_page_has_a_fixed_number_of_queries(client, sales_manager):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/people/").status_code == 200
        return len(queries)

    client.force_login(sales_manager)
    rule = AssignmentRuleFactory(name="One")
    PoolMemberFactory(rule=rule)
    few = count()
    for i in range(4):
        PoolMemberFactory(rule=AssignmentRuleFactory(name=f"More {i}"))
    assert count() == few


def test_the_tester_says_why_an_imagined_lead_gets_nobody(client, sales_manager, rep):
    rule = AssignmentRuleFactory(
        name="Germany", conditions=[{"field": "country", "op": "eq", "value": "DE"}]
    )
    PoolMemberFactory(rule=rule, rep=rep)
    client.force_login(sales_manager)
    page = client.get("/people/", {"test": "1", "country": "FR"}).content.decode()
    assert "No rep would get this lead" in page
    assert "Not country is DE: the lead&#x27;s country is “FR”." in page
