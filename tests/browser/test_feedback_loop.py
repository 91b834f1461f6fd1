"""Both loops end to end in the browser: a rep shares the asset suggested for his lead in one
click and logs the objection he heard; marketing then sees the share and the quote on its home
page and in the KPI page's content and objections tables. Screenshots at 1366 and 390 px."""

import pytest

from content.models import Asset, AssetUse, Objection
from leads.models import Stage, Touchpoint
from tests.browser.conftest import login, screenshot
from tests.factories import LeadFactory

pytestmark = pytest.mark.browser

QUOTE = "Your competitor throws in onboarding for free."


def fits(tab) -> bool:
    return tab.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_rep_shares_a_suggestion_and_logs_an_objection_marketing_sees_both(
    page,
    browser,
    live_server,
    rep,
    marketer,
):
    case_study = Asset.objects.create(
        title="How Northbank went live in a week",
        kind="case_study",
        funnel_stage="consideration",
        industries=["banking"],
        personas=["cfo"],
        url="https://example.com/northbank",
        sales_ready=True,
        owner=marketer,
    )
    Asset.objects.create(
        title="Retail one-pager",
        kind="one_pager",
        funnel_stage="awareness",
        industries=["retail"],
        url="https://example.com/retail",
        sales_ready=True,
        owner=marketer,
    )
    lead = LeadFactory(
        owner=rep,
        stage=Stage.SQL,
        industry="Banking",
        title="CFO",
        first_name="Bea",
        last_name="Banker",
        company="Northwind Bank",
    )

    login(page, "rep")
    page.goto(f"/leads/{lead.pk}/")
    suggested = page.locator("#suggested-content")
    assert "How Northbank went live in a week" in suggested.inner_text()
    assert "Retail one-pager" not in suggested.inner_text()
    page.click(f"#suggested-{case_study.pk} button[type=submit]")
    page.wait_for_selector("text=is shared with")
    share = AssetUse.objects.get()
    assert (share.asset, share.lead_id, share.kind) == (case_study, lead.pk, "shared")
    assert Touchpoint.objects.get(pk=share.touchpoint_id).kind == "content_shared"

    voice = page.locator("#voice")
    voice.locator("#voice-category").select_option("competitor")
    voice.locator("#voice-competitor").fill("Acme")
    voice.locator("#voice-text").fill(QUOTE)
    voice.locator("button[type=submit]").click()
    page.wait_for_selector("text=is logged on Bea Banker")
    assert Objection.objects.get().text == QUOTE
    assert "Content shared" in page.inner_text(".timeline")
    screenshot(page, "loop-lead-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    assert fits(page)
    screenshot(page, "loop-lead-390")

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 800})
    marketing = context.new_page()
    login(marketing, "marketer")
    marketing.goto("/")
    assert QUOTE in marketing.inner_text("#home-voice")
    content = marketing.locator("#home-content")
    assert content.locator("#content-shared strong").inner_text() == "1"
    assert "How Northbank went live in a week" in content.inner_text()
    screenshot(marketing, "loop-marketing-home-1366")

    marketing.goto("/kpis/")  # this month, so far
    objections = marketing.locator("section#objections")
    assert "Competitor" in objections.inner_text()
    row = marketing.locator("section#content tr", has_text="How Northbank went live in a week")
    assert row.locator("td").nth(1).inner_text().strip() == "1"  # shared once
    screenshot(marketing, "loop-kpis-1366")
    marketing.set_viewport_size({"width": 390, "height": 844})
    marketing.goto("/")
    assert fits(marketing)
    screenshot(marketing, "loop-marketing-home-390")
    context.close()
