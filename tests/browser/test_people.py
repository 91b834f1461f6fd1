"""People and routing in a real browser: a sales manager sets a rep away, edits a rule with a bad
condition and sees the error on its row, fixes it, and asks the tester which rule and rep a lead
would get. Screenshots at 1366 and 390 px."""

import pytest

from leads.models import AssignmentRule, PoolMember
from tests.browser.conftest import login, screenshot
from tests.factories import AssignmentRuleFactory, PoolMemberFactory, RepFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_manager_sets_a_rep_away_edits_a_rule_and_tests_a_lead(page):
    UserFactory(username="boss", role="sales_manager", first_name="Sam", last_name="Boss")
    anna = RepFactory(username="anna", first_name="Anna", last_name="Berg")
    ben = RepFactory(username="ben", first_name="Ben", last_name="Cole")
    rule = AssignmentRuleFactory(
        name="DACH", conditions=[{"field": "country", "op": "in", "value": ["DE", "AT"]}]
    )
    PoolMemberFactory(rule=rule, rep=anna, weight=1)
    PoolMemberFactory(rule=rule, rep=ben, weight=1)

    login(page, "boss")
    page.goto("/people/")
    page.click("button[aria-label='Set Anna Berg away']")
    page.wait_for_selector("text=Anna Berg is now away.")
    anna.refresh_from_db()
    assert anna.available is False
    screenshot(page, "people-1366")

    page.click("a[aria-label='Edit rule DACH']")
    page.select_option("#id_cond-1-field", "company_size")
    page.select_option("#id_cond-1-op", "gte")
    page.fill("#id_cond-1-value", "big")
    page.click("button:has-text('Save rule')")
    error = page.locator("li.condition-row.has-error .error")
    assert "This condition needs a number" in error.inner_text()
    screenshot(page, "people-rule-error-1366")
    assert AssignmentRule.objects.get(pk=rule.pk).conditions == [
        {"field": "country", "op": "in", "value": ["DE", "AT"]}
    ]

    page.fill("#id_cond-1-value", "100")
    page.click("button:has-text('Save rule')")
    page.wait_for_selector("text=Saved the rule “DACH”.")
    assert AssignmentRule.objects.get(pk=rule.pk).conditions[1] == {
        "field": "company_size",
        "op": "gte",
        "value": 100,
    }

    page.fill("#id_country", "DE")
    page.fill("#id_company_size", "250")
    page.click("#tester button[type=submit]")
    result = page.locator("#tester-result").inner_text()
    assert "would go to Ben Cole by the rule DACH" in result
    assert "Anna Berg" in result and "skipped, away" in result
    assert PoolMember.objects.get(rule=rule, rep=ben).assigned_count == 0
    screenshot(page, "people-tester-1366")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/people/?test=1&country=FR")
    assert "No rep would get this lead" in page.locator("#tester-result").inner_text()
    assert _fits(page)
    screenshot(page, "people-390")
    page.goto(f"/people/rules/{rule.pk}/")
    assert _fits(page)
    screenshot(page, "people-rule-390")


def test_a_rep_sets_their_own_availability_from_the_menu(page):
    RepFactory(username="rita", first_name="Rita", last_name="Lind")
    login(page, "rita")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/people/me/")
    page.click("button:has-text('I am away')")
    page.wait_for_selector("text=You are now away.")
    assert "You are away" in page.locator("main").inner_text()
    assert _fits(page)
    screenshot(page, "people-me-390")
