import pytest

from tests.browser.conftest import screenshot
from tests.factories import LeadFactory

pytestmark = pytest.mark.browser


def test_demo_login_reaches_the_lead_list(page, marketer):
    LeadFactory(email="ada@example.com", company="Analytical Engines")
    page.goto("/")
    assert page.url.endswith("/login/?next=/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Leads')")
    assert "Analytical Engines" in page.content()
    screenshot(page, "leads-list")


def test_wrong_password_stays_on_login_with_error(page, marketer):
    page.goto("/login/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector(".error")
    assert "/login/" in page.url
