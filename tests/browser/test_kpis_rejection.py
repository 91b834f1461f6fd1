"""Marketing sees a rejection appear in the KPIs: a rep rejects an MQL with a reason in the
browser, and the marketer's KPI page for this week counts that reason and that decision."""

import pytest
from django.utils import timezone

from kpis.selectors import iso_week_label
from leads import services
from leads.models import Lead, Stage
from tests.browser.conftest import login, screenshot
from tests.factories import LeadFactory, SourceFactory

pytestmark = pytest.mark.browser


def section(page, heading: str):
    """The KPI card under this heading, whatever its id or layout."""
    return page.locator("section", has=page.get_by_role("heading", name=heading, exact=True))


def test_marketing_sees_a_rejection_appear_in_the_kpis(page, marketer, rep):
    lead = LeadFactory(company="Umbrella Corp", owner=rep, source=SourceFactory(name="Trade fair"))
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)  # this week's MQL cohort

    login(page, "rep")
    page.goto(f"/leads/{lead.pk}/")
    page.select_option("#id_to", "rejected")
    page.select_option("#id_reason", label="Bad fit")
    page.fill("#id_note", "Two-person agency")
    page.click("#move button[type=submit]")
    page.wait_for_selector("text=is now Rejected")
    assert Lead.objects.get(pk=lead.pk).stage == Stage.REJECTED

    page.context.clear_cookies()
    login(page, "marketer")
    week = iso_week_label(timezone.localdate())
    page.goto(f"/kpis/?period={week}")
    page.wait_for_selector("h1:has-text('KPIs')")

    reasons = section(page, "Rejection reasons by source")
    row = reasons.locator("tr", has_text="Bad fit")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells == ["Bad fit", "Trade fair", "1"]

    acceptance = section(page, "MQL acceptance")
    decisions = {
        r.locator("td").first.inner_text(): r.locator("td").last.inner_text()
        for r in acceptance.locator("tbody tr").all()
    }
    assert decisions["Rejected"] == "1" and decisions["Accepted"] == "0"
    assert "1 MQLs" in acceptance.inner_text()
    screenshot(page, "kpis-rejection-1366")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/kpis/?period={week}")
    assert section(page, "Rejection reasons by source").locator("tr", has_text="Bad fit").count()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "kpis-rejection-390")
