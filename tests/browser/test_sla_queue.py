"""The sales queue in a real browser: a rep sees the countdown, accepts one MQL and rejects another
with a reason; the sales manager sees the breach of a third. Screenshots at 1366 and 390 px."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alignment.lib.business_time import Calendar
from leads import events
from leads.models import Lead, Stage
from sla.clocks.flagging import clocks_flag
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.selectors import agreement_active
from tests.sla.test_clocks import mql_assigned_to

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")


def _login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_selector("header .who")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _breach(lead: Lead) -> SlaClock:
    """Its first-touch clock due an hour ago (wall clock), and the flagging job run at that time."""
    now = timezone.now()
    SlaClock.objects.filter(lead=lead, kind=ClockKind.RESPONSE, ended_at=None).update(
        warn_at=now - timedelta(hours=2), due_at=now - timedelta(hours=1)
    )
    clock = SlaClock.objects.get(lead=lead, kind=ClockKind.RESPONSE, ended_at=None)
    assert clocks_flag(now=clock.due_at).breached == [clock.pk]
    return clock


def test_a_rep_works_the_queue_and_the_manager_sees_the_breach(page, rep, sales_manager, marketer):
    late = mql_assigned_to(rep, sales_manager, marketer, company="Late Industries")
    _breach(late)
    to_accept = mql_assigned_to(rep, sales_manager, marketer, company="Accept Me GmbH")
    to_reject = mql_assigned_to(rep, sales_manager, marketer, company="Reject Me AG")
    events.outbox_dispatch()
    calendar = Calendar.from_json(agreement_active().calendar)

    # the rep, on a laptop: three rows, the breached one first, each with its countdown
    _login(page, "rep")
    page.goto("/sla/queue/")
    rows = page.locator("#my-queue .queue-row")
    assert rows.count() == 3
    assert rows.first.get_attribute("data-lead") == str(late.pk)
    assert "Breached" in rows.first.inner_text()
    countdown = page.locator(f"#mine-lead-{to_accept.pk} .countdown-time")
    before = countdown.inner_text()
    assert before.endswith(" left")
    if calendar.is_open(timezone.now()):
        # open hours: it ticks every second
        page.wait_for_timeout(2200)
        assert countdown.inner_text() != before
    else:
        state = page.locator(f"#mine-lead-{to_accept.pk} .countdown-state").inner_text()
        assert "paused until" in state and "(outside working hours)" in state
        page.wait_for_timeout(1500)
        assert countdown.inner_text() == before
    assert "overdue by" in page.locator(f"#mine-lead-{late.pk} .countdown-time").inner_text()
    _shot(page, "queue_rep_1366")

    # accept one
    page.click(f"#mine-lead-{to_accept.pk} button.accept")
    page.wait_for_selector("text=accepted: it is now a sales-accepted lead")
    assert page.locator(f"#mine-lead-{to_accept.pk}").count() == 0
    assert Lead.objects.get(pk=to_accept.pk).stage == Stage.SAL

    # reject another, with a reason (only rejection reasons are offered)
    row = page.locator(f"#mine-lead-{to_reject.pk}")
    row.locator("summary:has-text('Reject')").click()
    options = row.locator("select[name=reason] option").all_inner_texts()
    assert "Bad fit" in options and "Price" not in options
    row.locator("select[name=reason]").select_option(label="Bad fit")
    row.locator("textarea[name=note]").fill("A reseller, not a buyer")
    row.locator("button:has-text('Reject this MQL')").click()
    page.wait_for_selector("text=rejected (Bad fit)")
    rejected = Lead.objects.get(pk=to_reject.pk)
    assert (rejected.stage, rejected.last_reason.code) == (Stage.REJECTED, "bad_fit")
    events.outbox_dispatch()
    for lead in (to_accept, to_reject):
        assert not SlaClock.objects.filter(lead=lead, ended_at=None).exists()

    # the rep on a phone: what is left fits the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/sla/queue/")
    assert page.locator("#my-queue .queue-row").count() == 1
    assert _fits(page)
    _shot(page, "queue_rep_390")
    # the reject form opened on a phone: reason, note and the button fit too
    page.locator(f"#mine-lead-{late.pk} summary:has-text('Reject')").click()
    assert page.locator(f"#mine-lead-{late.pk} select[name=reason]").is_visible()
    assert _fits(page)
    _shot(page, "queue_rep_390_reject")

    # the sales manager sees the breach among the clocks at risk and in the rep's counts
    page.context.clear_cookies()
    page.set_viewport_size({"width": 1366, "height": 800})
    _login(page, "sales_manager")
    page.goto("/sla/queue/")
    at_risk = page.locator(f"#at-risk tr[data-lead='{late.pk}']")
    assert at_risk.count() == 1
    assert "Breached" in at_risk.inner_text() and "overdue by" in at_risk.inner_text()
    assert "1 breached" in page.locator(f"#rep-{rep.pk} > h2").inner_text()
    assert SlaClock.objects.get(lead=late, kind=ClockKind.RESPONSE).status == (ClockStatus.BREACHED)
    _shot(page, "queue_manager_1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/sla/queue/")
    assert page.locator(f"#at-risk tr[data-lead='{late.pk}']").is_visible()
    assert _fits(page)
    _shot(page, "queue_manager_390")
