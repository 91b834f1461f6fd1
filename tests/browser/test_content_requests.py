"""Content requests in the browser: a rep asks and another votes, marketing marks it done with
the asset; the pages at 1366 and 390 px (nothing to scroll sideways)."""

import pytest

from content.models import Asset, ContentRequest
from tests.browser.conftest import login, screenshot
from tests.factories import RepFactory

pytestmark = pytest.mark.browser


def test_a_request_asked_voted_and_done(page, rep, marketer):
    RepFactory(username="sam")
    asset = Asset.objects.create(
        title="Nordbank case study",
        kind="case_study",
        funnel_stage="decision",
        url="https://example.com/nordbank",
        sales_ready=True,
    )
    login(page, "rep")
    page.goto("/content/requests/")
    page.fill("#id_title", "A case study for banks moving off spreadsheets")
    page.fill("#id_details", "Three banking deals ask who else like them uses it.")
    page.select_option("#id_funnel_stage", "decision")
    page.fill("#id_industry", "Banking")
    page.click("#request-ask button[type=submit]")
    page.wait_for_selector("text=Your request is in")
    made = ContentRequest.objects.get()
    screenshot(page, "requests-detail-rep-1366")

    page.context.clear_cookies()
    login(page, "sam")
    page.goto("/content/requests/")
    page.click(f"#request-{made.pk} button.request-vote")
    page.wait_for_selector("text=Voted: marketing sees it.")
    assert page.locator(f"#request-{made.pk} .request-votes").inner_text() == "1"
    screenshot(page, "requests-list-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/content/requests/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "requests-list-390")

    page.context.clear_cookies()
    page.set_viewport_size({"width": 1366, "height": 800})
    login(page, "marketer")
    page.goto(f"/content/requests/{made.pk}/")
    page.select_option("#id_status", "done")
    page.click("#request-status button[type=submit]")
    page.wait_for_selector("#request-status .errorlist")
    assert "Link the asset" in page.locator("#request-status .errorlist").inner_text()
    page.select_option("#id_status", "done")
    page.select_option("#id_asset", str(asset.pk))
    page.fill("#id_note", "Interview with Nordbank is live.")
    page.click("#request-status button[type=submit]")
    page.wait_for_selector("text=The request is now done.")
    assert "Nordbank case study" in page.locator("#request-asset").inner_text()
    made.refresh_from_db()
    assert (made.status, made.asset_id) == ("done", asset.pk)
    screenshot(page, "requests-detail-marketing-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/content/requests/{made.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "requests-detail-390")
    page.goto("/")
    page.wait_for_selector("#home-content")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#home-content").screenshot(path="var/screenshots/home-content-390.png")
