"""Each role signs in and lands on its home; screenshots at 1366 and 390 px."""

from datetime import date
from decimal import Decimal

import pytest

from kpis.models import Goal, Metric, PeriodKind
from leads.models import Announcement, Stage
from tests.browser.conftest import login, screenshot
from tests.factories import LeadFactory
from tests.sla.test_clocks import mql_assigned_to
from tests.sla.test_report import move

pytestmark = pytest.mark.browser

# what each role's home shows first
HOMES = {
    "rep": "#home-queue",
    "sales_manager": "#home-team",
    "marketer": "#home-delivery",
    "admin": "#home-goals",
}


@pytest.fixture
def data(rep, sales_manager, marketer, admin_user):
    lead = mql_assigned_to(rep, sales_manager, marketer, company="Initech")
    LeadFactory(stage=Stage.MQL, owner=None, company="Waiting Ltd")
    winner = LeadFactory(company="Acme Rockets", owner=rep, stage=Stage.WON, deal_value=48000)
    won_at = lead.mql_at
    move(winner, Stage.WON, won_at, frm=Stage.OPPORTUNITY, deal_value="48000")
    Announcement.objects.create(lead=winner, title="Won: Acme Rockets (€48,000)", body="Story")
    Goal.objects.create(
        metric=Metric.MQLS_DELIVERED,
        period_kind=PeriodKind.MONTH,
        period_start=date(won_at.year, won_at.month, 1),
        target=Decimal("20"),
        marketing=True,
        sales=True,
    )
    return {"lead": lead}


def test_each_role_lands_on_its_home(browser, live_server, data):
    for username, selector in HOMES.items():
        for width in (1366, 390):
            context = browser.new_context(
                base_url=live_server.url,
                viewport={"width": width, "height": 844 if width < 760 else 800},
            )
            page = context.new_page()
            login(page, username)
            assert page.url.rstrip("/") == live_server.url
            page.wait_for_selector(selector)
            assert page.locator("h1").inner_text() == "Home"
            assert page.locator("#home-goals").is_visible()
            # nothing runs off a phone's screen
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, (username, width, overflow)
            screenshot(page, f"home-{username}-{width}")
            context.close()
