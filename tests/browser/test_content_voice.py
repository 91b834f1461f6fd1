"""Voice of the prospect in the browser: a rep logs a competitor objection on the lead page (the
competitor field appears for that category) and another from the queue in one step; marketing
sees both on its home page and the voice page and links the asset that answers one; at 1366
and 390 px."""

import pytest

from content.models import Asset, Objection
from tests.browser.conftest import login, screenshot
from tests.factories import LeadFactory
from tests.sla.test_clocks import mql_assigned_to
from tests.sla.test_queue import ALWAYS_OPEN, set_calendar

pytestmark = pytest.mark.browser


def test_a_rep_logs_objections_and_marketing_answers_one(
    page,
    browser,
    live_server,
    rep,
    sales_manager,
    marketer,
):
    set_calendar(ALWAYS_OPEN)
    lead = LeadFactory(owner=rep, first_name="Olga", last_name="Objecta", industry="Banking")
    queued = mql_assigned_to(rep, sales_manager, marketer, company="Queue Corp")
    answer = Asset.objects.create(
        title="Us versus Acme",
        kind="one_pager",
        funnel_stage="decision",
        url="https://example.com/vs-acme",
        sales_ready=True,
    )

    login(page, "rep")
    page.goto(f"/leads/{lead.pk}/")
    card = page.locator("#voice")
    assert not card.locator("#voice-competitor").is_visible()
    card.locator("#voice-category").select_option("competitor")
    assert card.locator("#voice-competitor").is_visible()
    card.locator("#voice-competitor").fill("Acme")
    card.locator("#voice-text").fill("Acme quoted us half your price.")
    card.locator("button[type=submit]").click()
    page.wait_for_selector("text=is logged on Olga Objecta")
    assert "Acme quoted us half your price." in page.locator("#voice").inner_text()
    screenshot(page, "voice-lead-1366")

    page.goto("/sla/queue/")
    row = page.locator(f"#mine-lead-{queued.pk}")
    row.locator("summary:has-text('Log what you heard')").click()
    row.locator("select[name=category]").select_option("integration")
    row.locator("textarea[name=text]").fill("Does it sync with our CRM?")
    screenshot(page, "voice-queue-1366")
    row.locator(".queue-voice button[type=submit]").click()
    page.wait_for_selector("text=is logged on")
    assert page.url.endswith(f"/sla/queue/#mine-lead-{queued.pk}")
    assert Objection.objects.count() == 2

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/leads/{lead.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#voice").scroll_into_view_if_needed()
    screenshot(page, "voice-lead-390")
    page.goto("/sla/queue/")
    page.locator(f"#mine-lead-{queued.pk} summary:has-text('Log what you heard')").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "voice-queue-390")

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 800})
    marketing = context.new_page()
    login(marketing, "marketer")
    marketing.goto("/")
    home = marketing.locator("#home-voice")
    assert "Acme quoted us half your price." in home.inner_text()
    assert "Does it sync with our CRM?" in home.inner_text()
    screenshot(marketing, "voice-home-1366")

    marketing.click("#home-voice >> text=All quotes, by segment and period")
    marketing.wait_for_selector("h1:has-text('Voice of the prospect')")
    objection = Objection.objects.get(category="competitor")
    quote = marketing.locator(f"#quote-{objection.pk}")
    quote.locator("select[name=answer]").select_option(str(answer.pk))
    quote.locator("button[type=submit]").click()
    marketing.wait_for_selector("text=“Us versus Acme” answers it")
    assert "Answered by Us versus Acme" in marketing.locator(f"#quote-{objection.pk}").inner_text()
    objection.refresh_from_db()
    assert objection.answer == answer
    screenshot(marketing, "voice-page-1366")

    marketing.goto("/content/voice/?segment=industry")
    screenshot(marketing, "voice-page-segment-1366")
    marketing.set_viewport_size({"width": 390, "height": 844})
    marketing.goto("/content/voice/")
    assert marketing.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(marketing, "voice-page-390")
    marketing.goto("/")
    assert marketing.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(marketing, "voice-home-390")
    context.close()
