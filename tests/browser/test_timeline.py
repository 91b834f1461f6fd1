import pytest
from django.utils import timezone

from leads import services
from leads.models import Lead, Stage
from tests.browser.conftest import screenshot
from tests.factories import LeadFactory

pytestmark = pytest.mark.browser


def _login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_selector("h1")


def test_a_rep_logs_a_call_with_a_note_and_sees_it_in_the_timeline(page, rep, marketer):
    lead = LeadFactory(company="Umbrella Corp", owner=rep)
    services.lead_update(lead=lead, changes={"title": "VP Operations"}, by=marketer)
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    _login(page, "rep")
    page.goto(f"/leads/{lead.pk}/")
    page.select_option("#id_touchpoint_kind", "call")
    page.fill("#id_touchpoint_note", "Asked about pricing for 40 seats")
    page.click("#touchpoint button[type=submit]")
    page.wait_for_selector("text=Touchpoint logged.")
    timeline = page.inner_text(".timeline")
    assert "Call · Asked about pricing for 40 seats" in timeline
    assert "New → MQL" in timeline and "Changed title" in timeline
    assert Lead.objects.get(pk=lead.pk).first_sales_touch_at <= timezone.now()
    screenshot(page, "lead-timeline-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector(".timeline")
    screenshot(page, "lead-timeline-390")
