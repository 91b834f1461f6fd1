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
    page.wait_for_selector("h1:has-text('Home')")
    page.goto("/leads/")
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


def test_rep_rejects_an_mql_with_a_reason(page, rep):
    from leads.models import Lead, Stage

    lead = LeadFactory(company="Umbrella Corp", stage=Stage.MQL, owner=rep)
    page.goto("/login/")
    page.fill("#id_username", "rep")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.goto(f"/leads/{lead.pk}/")
    page.select_option("#id_to", "rejected")
    page.click("#move button[type=submit]")
    page.wait_for_selector("text=needs a reason")
    screenshot(page, "lead-reject-error")
    page.select_option("#id_to", "rejected")
    page.select_option("#id_reason", label="Bad fit")
    page.fill("#id_note", "Two-person agency")
    page.click("#move button[type=submit]")
    page.wait_for_selector("text=is now Rejected")
    assert "MQL → Rejected" in page.content()
    screenshot(page, "lead-detail")
    assert Lead.objects.get(pk=lead.pk).stage == Stage.REJECTED
