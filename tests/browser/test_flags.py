"""A lead flag in the browser: the rep flags his lead (wrong routing) on the lead page; the
campaign's marketing owner sees it on her home and in her notifications and replies; the rep
sees the reply and answers; marketing resolves it; the flag shows resolved. At 1366 and 390 px."""

import pytest

from alignment.models import Role
from content.models import FlagStatus, LeadFlag
from tests.browser.conftest import login, screenshot
from tests.factories import CampaignFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 800}


def _narrow_fits(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_flag_from_the_rep_to_marketing_and_back(page, rep):
    mia = UserFactory(username="mia", first_name="Mia", last_name="Marketing", role=Role.MARKETER)
    rep.first_name, rep.last_name = "Rick", "Rep"
    rep.save(update_fields=["first_name", "last_name"])
    lead = LeadFactory(
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines GmbH",
        owner=rep,
        campaign=CampaignFactory(name="Spring webinar", marketing_owner=mia),
    )
    url = f"/leads/{lead.pk}/"

    # the rep flags his lead
    login(page, "rep")
    page.goto(url)
    page.select_option("#id_flag_new_reason", "wrong_routing")
    page.fill("#id_flag_new_comment", "Munich office, but routed to the Hamburg team.")
    page.click("#flag-new button[type=submit]")
    page.wait_for_selector("text=Flagged: marketing is told")
    flag = LeadFlag.objects.get()
    assert flag.reason == "wrong_routing" and flag.raised_by == rep

    # the marketing owner: her home, her notifications, the thread
    page.context.clear_cookies()
    login(page, "mia")
    page.goto("/")
    home = page.locator("#home-flags")
    assert "Ada Lovelace" in home.inner_text() and "Wrong routing" in home.inner_text()
    screenshot(page, "flags-home-marketing-1366")
    page.set_viewport_size(PHONE)
    page.goto("/")
    _narrow_fits(page)
    page.locator("#home-flags").scroll_into_view_if_needed()
    screenshot(page, "flags-home-marketing-390")
    page.goto("/content/flags/")
    _narrow_fits(page)
    assert "Ada Lovelace" in page.locator("#flags-open").inner_text()
    screenshot(page, "flags-list-390")
    page.set_viewport_size(DESKTOP)
    page.goto("/content/flags/")
    screenshot(page, "flags-list-1366")
    page.goto("/notifications/")
    assert "Lead flagged (wrong routing): Ada Lovelace" in page.content()
    page.goto(url)
    page.fill(f"#id_flag{flag.pk}_reply_body", "Which territory should it be: Bavaria?")
    page.click(f"#flag-{flag.pk} .flag-reply button[type=submit]")
    page.wait_for_selector("text=Your reply is in the thread.")

    # the rep sees the reply and answers
    page.context.clear_cookies()
    login(page, "rep")
    page.goto("/")
    assert "Marketing replied" in page.locator("#home-my-flags").inner_text()
    page.goto(url)
    thread = page.locator(f"#flag-{flag.pk}")
    assert "Which territory should it be: Bavaria?" in thread.inner_text()
    assert thread.locator(".flag-resolve").count() == 0
    page.fill(f"#id_flag{flag.pk}_reply_body", "Yes, Bavaria: the Munich pool.")
    page.click(f"#flag-{flag.pk} .flag-reply button[type=submit]")
    page.wait_for_selector("text=Your reply is in the thread.")

    # marketing resolves it; a note-less "not a problem" is explained first
    page.context.clear_cookies()
    login(page, "mia")
    page.goto(url)
    page.locator(f"#flag-{flag.pk} .flag-resolve summary").click()
    page.locator("#flags").screenshot(path=str(screenshot(page, "flags-lead-open-1366")))
    page.set_viewport_size(PHONE)
    _narrow_fits(page)
    page.locator("#flags").screenshot(path=str(screenshot(page, "flags-lead-open-390")))
    page.set_viewport_size(DESKTOP)
    page.select_option(f"#id_flag{flag.pk}_resolve_outcome", "declined")
    page.click(f"#flag-{flag.pk} .flag-resolve button[type=submit]")
    page.wait_for_selector("text=the rep is owed a reason")
    page.select_option(f"#id_flag{flag.pk}_resolve_outcome", "rerouted")
    page.fill(
        f"#id_flag{flag.pk}_resolve_resolution",
        "Routing rule fixed; the lead is in the Munich pool.",
    )
    page.click(f"#flag-{flag.pk} .flag-resolve button[type=submit]")
    page.wait_for_selector("text=The flag is resolved")
    flag.refresh_from_db()
    assert flag.status == FlagStatus.RESOLVED and flag.outcome == "rerouted"

    # the rep sees it resolved
    page.context.clear_cookies()
    login(page, "rep")
    page.goto(url)
    card = page.locator("#flags")
    assert "Resolved: Rerouted" in card.inner_text()
    assert "Routing rule fixed" in card.inner_text()
    card.scroll_into_view_if_needed()
    screenshot(page, "flags-lead-thread-1366")
    page.set_viewport_size(PHONE)
    page.goto(url)
    _narrow_fits(page)
    page.locator("#flags").scroll_into_view_if_needed()
    screenshot(page, "flags-lead-thread-390")
    page.locator("#flags").screenshot(
        path=str(screenshot(page, "flags-lead-thread-390").parent / "flags-card-390.png")
    )
    page.set_viewport_size(DESKTOP)
    page.goto(url)
    page.locator("#flags").screenshot(
        path=str(screenshot(page, "flags-lead-thread-1366").parent / "flags-card-1366.png")
    )
