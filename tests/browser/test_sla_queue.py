"""The sales queue in a real browser: a rep sees the countdown, accepts one MQL and rejects another
with a reason; the sales manager sees the breach of a third. Screenshots at 1366 and 390 px."""

from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alignment.lib.business_time import WEEKDAYS, Calendar
from leads import events
from leads.models import Lead, Stage
from sla import queue
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
    assert "overdue" in page.locator(f"#mine-lead-{late.pk} .countdown-time").inner_text()
    _shot(page, "queue_rep_1366")
    # why it qualified: the short line opens the full explanation kept when it became an MQL
    page.click(f"#mine-lead-{to_accept.pk} .queue-why summary")
    assert page.locator(f"#mine-lead-{to_accept.pk} table.score-explanation").first.is_visible()
    _shot(page, "queue_rep_1366_why")

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
    assert "Breached" in at_risk.inner_text() and "overdue" in at_risk.inner_text()
    assert "1 breached" in page.locator(f"#rep-{rep.pk} > h2").inner_text()
    assert SlaClock.objects.get(lead=late, kind=ClockKind.RESPONSE).status == (ClockStatus.BREACHED)
    _shot(page, "queue_manager_1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/sla/queue/")
    assert page.locator(f"#at-risk tr[data-lead='{late.pk}']").is_visible()
    assert _fits(page)
    _shot(page, "queue_manager_390")


def _zone_where_it_is_ten_now() -> str:
    """An Etc/GMT zone whose clocks show 10:xx now: a 09:00–12:00 shift is open for 1-2 hours."""
    offset = (10 - timezone.now().astimezone(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    # Etc/GMT names have the sign the other way round: Etc/GMT-3 is UTC+3
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def test_the_countdown_ticks_in_the_shift_and_stops_at_its_end(page, rep, sales_manager, marketer):
    agreement = agreement_active()
    agreement.calendar = {
        "timezone": _zone_where_it_is_ten_now(),
        "hours": {day: [["09:00", "12:00"]] for day in WEEKDAYS},
        "country": "",
        "subdivision": "",
        "closed_days": [],
    }
    agreement.updated_at = timezone.now()
    agreement.save(update_fields=["calendar", "updated_at"])
    lead = mql_assigned_to(rep, sales_manager, marketer)
    now = timezone.now()
    shift_end = queue.queue_for_rep(rep=rep, now=now)[0].countdown.shift_end
    assert timedelta(0) < shift_end - now <= timedelta(hours=2)

    _login(page, "rep")
    page.clock.install(time=now)
    page.goto("/sla/queue/")
    time = page.locator(f"#mine-lead-{lead.pk} .countdown-time")
    state = page.locator(f"#mine-lead-{lead.pk} .countdown-state")
    first = time.inner_text()
    assert "running until" in state.inner_text()
    page.clock.run_for(3000)
    assert time.inner_text() != first
    # past the shift's end the business time stands still, and the page says until when
    page.clock.fast_forward(int((shift_end - now).total_seconds() * 1000) + 5000)
    page.clock.run_for(1000)
    assert "paused until" in state.inner_text()
    assert "(outside working hours)" in state.inner_text()
    stopped = time.inner_text()
    page.clock.run_for(5000)
    assert time.inner_text() == stopped
    assert page.get_attribute(f"#mine-lead-{lead.pk} [data-countdown]", "data-open") == "false"
