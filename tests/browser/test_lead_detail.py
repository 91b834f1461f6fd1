"""A sales manager reassigns a lead to a rep who is away: the page warns, he confirms, the rep is
notified. At phone width (390 px) the menu folds behind a button and the lead page is one column.
Screenshots at 1366 and 390 px in var/screenshots/."""

from decimal import Decimal

import pytest

from alignment.models import Notification
from leads.models import Lead, Stage
from tests.browser.conftest import login, screenshot
from tests.factories import LeadFactory, RepFactory

pytestmark = pytest.mark.browser


def test_manager_reassigns_to_an_away_rep_after_a_warning(page, sales_manager, rep):
    away = RepFactory(username="rita", first_name="Rita", last_name="Away", available=False)
    lead = LeadFactory(
        stage=Stage.OPPORTUNITY,
        owner=rep,
        first_name="Anna",
        last_name="Berg",
        company="Test GmbH",
        deal_value=Decimal("48000.00"),
    )
    login(page, "sales_manager")
    page.goto(f"/leads/{lead.pk}/")
    assert page.inner_text("#deal-value") == "€48,000"
    # only the moves a manager makes from an opportunity; the lost reasons show once "Lost" is chosen
    assert page.locator("#id_to option").all_inner_texts() == ["Won", "Lost"]
    assert not page.locator("#id_reason").is_visible()
    page.select_option("#id_to", "lost")
    assert page.locator("#id_reason").is_visible()
    assert "Price" in page.locator("#id_reason").inner_text()
    assert not page.locator("#id_deal_value").is_visible()

    options = page.locator("#id_assign_rep option").all_inner_texts()
    assert "Rita Away — away, 0 of 50 open" in options
    page.select_option("#id_assign_rep", label="Rita Away — away, 0 of 50 open")
    page.fill("#id_assign_note", "Rita covers the account")
    page.click("#assign form button[type=submit]")
    page.wait_for_selector("#assign-warning")
    assert "Rita Away is away (not taking new leads)." in page.inner_text("#assign-warning")
    assert Lead.objects.get(pk=lead.pk).owner == rep
    screenshot(page, "lead-detail-assign-warning")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.locator("#assign-anyway").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#assign").screenshot(
        path=str(screenshot(page, "lead-detail-assign-warning-phone"))
    )
    page.set_viewport_size({"width": 1366, "height": 800})

    page.click("#assign-anyway")
    page.wait_for_selector("text=Assigned to Rita Away. They have been notified.")
    assert Lead.objects.get(pk=lead.pk).owner == away
    notification = Notification.objects.get(user=away)
    assert notification.url == f"/leads/{lead.pk}/"
    screenshot(page, "lead-detail-assigned")


def test_lead_page_and_menu_at_phone_width(page, rep):
    lead = LeadFactory(
        stage=Stage.MQL, owner=rep, first_name="Anna", last_name="Berg", company="Test GmbH"
    )
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "rep")
    page.goto(f"/leads/{lead.pk}/")
    # the menu is folded: nothing in the header runs off the screen
    assert page.locator(".menu-button").is_visible()
    assert not page.locator("#site-nav").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "lead-detail-phone")

    # one column: the actions first, then the record, each the width of the screen
    move, record = page.locator("#move").bounding_box(), page.locator("#lead-record").bounding_box()
    assert move["y"] < record["y"]
    assert abs(move["x"] - record["x"]) < 2 and move["width"] > 340
    page.select_option("#id_to", "rejected")
    assert page.locator("#id_reason").is_visible()

    page.click(".menu-button")
    assert page.locator("#site-nav").is_visible()
    assert page.locator(".menu-button").get_attribute("aria-expanded") == "true"
    for link in page.locator("#site-nav a").all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "lead-detail-phone-menu")

    page.set_viewport_size({"width": 1366, "height": 800})
    assert not page.locator(".menu-button").is_visible()
    assert page.locator("#site-nav").is_visible()
    screenshot(page, "lead-detail-wide")
