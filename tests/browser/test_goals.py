"""Setting a goal in the browser: a wrong first day is explained next to the field, the fixed
form sets the goal, and the list shows it; at 1366 and 390 px."""

import pytest

from kpis.models import Goal
from tests.browser.conftest import login, screenshot

pytestmark = pytest.mark.browser


def test_marketing_manager_sets_a_goal(page, marketing_manager):
    login(page, "marketing_manager")
    page.goto("/kpis/goals/")
    page.wait_for_selector("h1:has-text('Shared goals')")
    page.select_option("#id_metric", label="MQLs delivered")
    page.select_option("#id_period_kind", "month")
    page.fill("#id_period_start", "2026-12-03")
    page.fill("#id_target", "120")
    page.check("#id_sales")
    page.click("#goal-new button[type=submit]")
    error = page.locator(".goal-field-period_start .errorlist")
    error.wait_for()
    assert "starts on the 1st of a month" in error.inner_text()
    screenshot(page, "goals-error-1366")

    page.fill("#id_period_start", "2026-12-01")
    page.click("#goal-new button[type=submit]")
    page.wait_for_selector("text=Goal set: MQLs delivered.")
    goal = Goal.objects.get()
    assert goal.marketing and goal.sales and goal.target == 120
    row = page.locator(f'tr[data-goal="{goal.pk}"]')
    assert "Marketing and sales" in row.inner_text() and "2026-12" in row.inner_text()
    screenshot(page, "goals-1366")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/kpis/goals/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "goals-390")
