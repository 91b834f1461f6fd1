"""Wins in the browser: every won lead, the announcement where there is one, the owner filter,
at 1366 and 390 px."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from leads.models import Announcement, Stage
from tests.browser.conftest import login, screenshot
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.browser


def test_marketer_reads_every_win_and_filters_by_owner(page, marketer, rep, other_rep):
    now = timezone.now()
    source, campaign = SourceFactory(name="Webinar"), CampaignFactory(name="Autumn launch")
    announced = LeadFactory(
        company="Hooli",
        first_name="Gavin",
        last_name="Belson",
        stage=Stage.WON,
        won_at=now - dt.timedelta(hours=1),
        owner=rep,
        deal_value=Decimal("48000"),
        source=source,
        campaign=campaign,
    )
    Announcement.objects.create(
        lead=announced,
        title="New customer: Hooli (€48,000)",
        body="We won Hooli!\nFirst touch: webinar.",
    )
    LeadFactory(
        company="Initech",
        stage=Stage.WON,
        won_at=now - dt.timedelta(days=2),
        owner=other_rep,
        deal_value=Decimal("1250.50"),
    )

    login(page, "marketer")
    page.goto("/leads/wins/")
    page.wait_for_selector("h1:has-text('New customers')")
    rows = page.locator("#wins tbody tr")
    assert rows.count() == 2
    assert "Hooli" in rows.nth(0).inner_text() and "Initech" in rows.nth(1).inner_text()
    assert "€48,000" in rows.nth(0).inner_text() and "€1,250.50" in rows.nth(1).inner_text()
    assert "Webinar · Autumn launch" in rows.nth(0).inner_text()
    page.click("summary:has-text('New customer: Hooli')")
    page.wait_for_selector("text=First touch: webinar.")
    screenshot(page, "wins-1366")

    page.select_option("#id_owner", label=str(other_rep))
    with page.expect_navigation():
        page.click("#wins-filters button[type=submit]")
    assert f"owner={other_rep.pk}" in page.url
    assert page.locator("#wins tbody tr").count() == 1
    assert "Initech" in page.locator("#wins").inner_text()

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/leads/wins/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "wins-390")
