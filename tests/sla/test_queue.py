"""The sales queue (/sla/queue/): a rep's MQLs most urgent first with business-time countdowns, the
moves from the queue (accept, reject with a reason, log a touch) through the lead services, and
the team view of a sales manager (queues, unassigned MQLs, clocks at risk)."""

import html
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from alignment.lib.business_time import WEEKDAYS, Calendar
from leads import events
from leads.lifecycle import lead_move
from leads.models import Lead, Reason, ReasonKind, Stage, Touchpoint
from sla import queue
from sla.clocks.flagging import clocks_flag
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.selectors import agreement_active
from tests.factories import LeadFactory
from tests.sla.test_clocks import mql_assigned_to

pytestmark = pytest.mark.django_db

URL = "/sla/queue/"
# session, user, the bell's count, then: agreement, the rep's clocks (with leads, agreements,
# owners), their MQL snapshots, the reject reasons
REP_QUERIES = 7
# ... and for a sales manager: their own clocks (none here: no snapshot query), then the team:
# sales people, counts per person, the team's clocks, their snapshots, unassigned MQLs, their
# count, the clocks at risk
MANAGER_QUERIES = 13

ALWAYS_OPEN = {
    "timezone": "Europe/Berlin",
    "hours": {day: [["00:00", "24:00"]] for day in WEEKDAYS},
    "country": "",
    "subdivision": "",
    "closed_days": [],
}


def set_calendar(calendar: dict) -> None:
    """The agreement in force with this calendar (before the clocks start, which read it)."""
    agreement = agreement_active()
    agreement.calendar = calendar
    agreement.updated_at = timezone.now()
    # updated_at too: the parsed terms are kept per version and edit (sla.clocks.services)
    agreement.save(update_fields=["calendar", "updated_at"])


def closed_today_calendar() -> dict:
    """Open only on a weekday three days from today (Berlin): closed now, whatever the time."""
    today = timezone.localtime(timezone.now(), ZoneInfo("Europe/Berlin")).weekday()
    open_day = WEEKDAYS[(today + 3) % 7]
    return {
        **ALWAYS_OPEN,
        "hours": {day: [["09:00", "17:00"]] if day == open_day else [] for day in WEEKDAYS},
    }


def get(client, user, url=URL, status=200) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == status
    return html.unescape(response.content.decode())


def dispatch():
    events.outbox_dispatch()


def running(lead) -> dict:
    return {c.kind: c for c in SlaClock.objects.filter(lead=lead, ended_at__isnull=True)}


def row_ids(text: str, prefix: str = "mine") -> list[int]:
    return [int(pk) for pk in re.findall(rf'id="{prefix}-lead-(\d+)"', text)]


def reject_reason(code: str = "bad_fit") -> Reason:
    return Reason.objects.get(kind=ReasonKind.REJECT, code=code)


def make_overdue(lead, hours: int = 1) -> None:
    """The lead's response clock due `hours` (wall-clock) ago, and flagged breached by the job."""
    now = timezone.now()
    SlaClock.objects.filter(lead=lead, kind=ClockKind.RESPONSE).update(
        warn_at=now - timedelta(hours=hours + 1), due_at=now - timedelta(hours=hours)
    )
    clocks_flag(now=running(lead)[ClockKind.RESPONSE].due_at)


@pytest.fixture
def open_calendar(db):
    set_calendar(ALWAYS_OPEN)


# --- what a rep sees ------------------------------------------------------------------------------


def test_the_queue_puts_breached_first_then_the_nearest_due_time(
    client, rep, sales_manager, marketer, open_calendar
):
    first = mql_assigned_to(rep, sales_manager, marketer)
    second = mql_assigned_to(rep, sales_manager, marketer)
    third = mql_assigned_to(rep, sales_manager, marketer)
    # the second is breached: past its response due time
    now = timezone.now()
    SlaClock.objects.filter(lead=second, kind=ClockKind.RESPONSE).update(
        due_at=now - timedelta(minutes=30), warn_at=now - timedelta(hours=1)
    )
    # the third is due sooner than the first
    SlaClock.objects.filter(lead=third, kind=ClockKind.RESPONSE).update(
        due_at=now + timedelta(minutes=20), warn_at=now + timedelta(minutes=10)
    )
    rows = queue.queue_for_rep(rep=rep, now=now)
    assert [r.lead.pk for r in rows] == [second.pk, third.pk, first.pk]
    assert [r.status for r in rows] == [
        ClockStatus.BREACHED,
        ClockStatus.PENDING,
        ClockStatus.PENDING,
    ]
    assert rows[0].countdown.seconds == -30 * 60
    assert rows[0].countdown.text == "overdue by 0 h 30 min 00 s"
    assert row_ids(get(client, rep)) == [second.pk, third.pk, first.pk]


def test_a_row_shows_both_clocks_the_score_and_why_it_qualified(
    client, rep, sales_manager, marketer, open_calendar
):
    lead = mql_assigned_to(rep, sales_manager, marketer, company="Engines Ltd")
    clocks = running(lead)
    text = get(client, rep)
    assert "Engines Ltd" in text
    assert "Respond by" in text and "Decide by" in text
    assert "Why it qualified" in text
    row = queue.queue_for_rep(rep=rep, now=timezone.now())[0]
    assert row.explanation is not None and row.why
    # the score it qualified with, from the snapshot kept at the MQL
    assert f"Score {row.explanation['total']:.0f}" in text
    assert f"grade {row.explanation['grade']}" in text
    # these MQLs were made by hand (the marketer), short of the definition: the line says so
    assert row.why.startswith("marked MQL by hand, short of the definition; ")
    assert row.why in text
    # the countdown runs to the response clock, the nearer of the two
    assert row.next_clock == clocks[ClockKind.RESPONSE]
    assert 'data-open="true"' in text


def test_a_rep_sees_only_their_own_leads(client, rep, other_rep, sales_manager, marketer):
    mine = mql_assigned_to(rep, sales_manager, marketer)
    theirs = mql_assigned_to(other_rep, sales_manager, marketer)
    text = get(client, rep)
    assert row_ids(text) == [mine.pk]
    assert theirs.display_name not in text
    assert 'id="team-summary"' not in text


def test_an_empty_queue_says_what_happens_next(client, rep):
    text = get(client, rep)
    assert "Nothing waits for you right now." in text
    assert "appears here with two clocks" in text


def test_a_lead_assigned_outside_working_hours_shows_a_paused_countdown(
    client, rep, sales_manager, marketer
):
    set_calendar(closed_today_calendar())
    lead = mql_assigned_to(rep, sales_manager, marketer)
    response = running(lead)[ClockKind.RESPONSE]
    calendar = Calendar.from_json(agreement_active().calendar)
    text = get(client, rep)
    # nothing of the 4 business hours has passed: the clock waits for the next shift
    assert 'data-seconds="14400"' in text
    assert 'data-open="false"' in text
    assert "data-shift-end" not in text
    assert "4 h 00 min 00 s left" in text
    resumes = calendar.next_open(timezone.now())
    assert response.due_at == calendar.add(resumes, timedelta(hours=4))
    label = timezone.localtime(resumes).strftime("%a %H:%M")
    assert f"paused until {label} (outside working hours)" in text


def test_an_open_calendar_gives_the_js_the_seconds_left_and_the_shift_end(
    client, rep, sales_manager, marketer
):
    # open 09:00-17:00 every day in a zone where it is now mid-shift is hard to arrange: use a
    # calendar open all day every day, so the shift ends at the coming midnight (Berlin)
    set_calendar(ALWAYS_OPEN)
    lead = mql_assigned_to(rep, sales_manager, marketer)
    now = timezone.now()
    row = queue.queue_for_rep(rep=rep, now=now)[0]
    due = running(lead)[ClockKind.RESPONSE].due_at
    assert row.countdown.open
    assert row.countdown.seconds == int((due - now).total_seconds())
    assert row.countdown.shift_end > now
    text = get(client, rep)
    seconds = int(re.search(r'data-seconds="(-?\d+)"', text).group(1))
    assert 4 * 3600 - 60 < seconds <= 4 * 3600
    assert re.search(r'data-shift-end="\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d"', text)


def test_the_countdown_of_an_overdue_clock_counts_business_time_only():
    calendar = Calendar.from_json(
        {
            "timezone": "UTC",
            "hours": {day: [["09:00", "17:00"]] for day in WEEKDAYS},
            "country": "",
        }
    )
    due = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    # the next morning at 10:00: one hour yesterday, one this morning
    later = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    countdown = queue.countdown_of(calendar=calendar, due_at=due, now=later)
    assert countdown.seconds == -2 * 3600 and countdown.open
    assert countdown.shift_end == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    night = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    paused = queue.countdown_of(calendar=calendar, due_at=due, now=night)
    assert paused.seconds == -3600 and not paused.open
    assert paused.resumes_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    # due at the shift's end and looked at that night: no business time since, but overdue
    at_end = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    late = queue.countdown_of(calendar=calendar, due_at=at_end, now=night)
    assert (late.seconds, late.overdue, late.text) == (0, True, "overdue")


def test_why_it_qualified_names_the_rules_with_the_most_points():
    explanation = {
        "mql": {"qualifies": True},
        "fit": {"rules": [{"label": "VP", "points": 20}, {"label": "DE", "points": 5}]},
        "engagement": {
            "rules": [
                {"label": "Demo request", "points": 30.0, "occurrences": 1},
                {"label": "Webinar", "points": 12.5, "occurrences": 2},
            ]
        },
    }
    assert queue.why_qualified(explanation) == "Demo request (+30), VP (+20), Webinar ×2 (+12.5)"
    assert queue.why_qualified(None) == ""


def test_a_round_the_clock_calendar_runs_through_midnight():
    calendar = Calendar.from_json({**ALWAYS_OPEN, "timezone": "UTC"})
    now = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    countdown = queue.countdown_of(calendar=calendar, due_at=now + timedelta(hours=4), now=now)
    assert countdown.open and countdown.seconds == 4 * 3600
    # touching shifts are one stretch: no pause at 00:00
    assert countdown.shift_end >= now + timedelta(days=7)


# --- the moves from the queue ---------------------------------------------------------------------


def test_accepting_from_the_queue_ends_both_clocks(client, rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    response = client.post(reverse("sla_queue:accept", args=[lead.pk]), follow=True)
    assert response.redirect_chain[-1][0] == URL
    assert "accepted" in response.content.decode()
    dispatch()
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert running(lead) == {}
    assert set(SlaClock.objects.filter(lead=lead).values_list("status", flat=True)) == {
        ClockStatus.MET
    }
    assert row_ids(get(client, rep)) == []


def test_rejecting_with_a_reason_ends_both_clocks(client, rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    response = client.post(
        reverse("sla_queue:reject", args=[lead.pk]),
        {"reason": reject_reason().pk, "note": "Agency, not a buyer"},
    )
    assert response.status_code == 302
    dispatch()
    lead.refresh_from_db()
    assert (lead.stage, lead.last_reason) == (Stage.REJECTED, reject_reason())
    assert running(lead) == {}


def test_reject_without_reason_is_refused_and_changes_nothing(client, rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    response = client.post(reverse("sla_queue:reject", args=[lead.pk]), {"note": "meh"})
    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    assert "Choose a reason for rejecting this MQL." in text
    # the row's form is open again with what was typed
    assert re.search(r'<details class="queue-reject" open>', text)
    assert ">meh</textarea>" in text
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert set(running(lead)) == {ClockKind.RESPONSE, ClockKind.DECISION}


def test_a_reason_that_needs_a_note_is_refused_without_one(client, rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    response = client.post(
        reverse("sla_queue:reject", args=[lead.pk]), {"reason": reject_reason("other").pk}
    )
    assert response.status_code == 400
    assert "needs a note" in html.unescape(response.content.decode())
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_only_reject_reasons_are_offered(client, rep, sales_manager, marketer):
    mql_assigned_to(rep, sales_manager, marketer)
    text = get(client, rep)
    offered = set(re.findall(r'<option value="(\d+)"', text))
    expected = {
        str(pk)
        for pk in Reason.objects.filter(kind=ReasonKind.REJECT, active=True).values_list(
            "pk", flat=True
        )
    }
    assert offered == expected
    # a recycle reason posted by hand is not accepted either
    recycle = Reason.objects.filter(kind=ReasonKind.RECYCLE).first()
    lead = Lead.objects.get(owner=rep)
    client.force_login(rep)
    response = client.post(reverse("sla_queue:reject", args=[lead.pk]), {"reason": recycle.pk})
    assert response.status_code == 400
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


@pytest.mark.parametrize("kind", ["call", "sales_email", "meeting"])
def test_logging_a_touch_from_the_queue_meets_the_response_clock(
    client, rep, sales_manager, marketer, kind
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    response = client.post(reverse("sla_queue:touch", args=[lead.pk]), {"kind": kind})
    assert response.status_code == 302
    dispatch()
    assert Touchpoint.objects.filter(lead=lead, kind=kind).count() == 1
    assert set(running(lead)) == {ClockKind.DECISION}
    assert SlaClock.objects.get(lead=lead, kind=ClockKind.RESPONSE).status == ClockStatus.MET
    text = get(client, rep)
    assert "Responded" in text and "Decide by" in text


def test_a_touch_kind_other_than_call_email_or_meeting_is_refused(
    client, rep, sales_manager, marketer
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    response = client.post(
        reverse("sla_queue:touch", args=[lead.pk]), {"kind": "note"}, follow=True
    )
    assert "Choose a call, an email or a meeting" in html.unescape(response.content.decode())
    assert not Touchpoint.objects.filter(lead=lead, kind="note").exists()


def test_a_rep_cannot_act_on_another_reps_lead(client, rep, other_rep, sales_manager, marketer):
    lead = mql_assigned_to(other_rep, sales_manager, marketer)
    client.force_login(rep)
    for name, data in (
        ("accept", {}),
        ("reject", {"reason": reject_reason().pk}),
        ("touch", {"kind": "call"}),
    ):
        response = client.post(reverse(f"sla_queue:{name}", args=[lead.pk]), data, follow=True)
        assert response.status_code in (200, 400)
        assert "not assigned to you" in html.unescape(response.content.decode())
    dispatch()
    lead.refresh_from_db()
    assert (lead.stage, lead.owner) == (Stage.MQL, other_rep)
    assert (
        not Touchpoint.objects.filter(lead=lead)
        .exclude(kind__in=["web_visit"])
        .filter(kind="call")
        .exists()
    )
    assert set(running(lead)) == {ClockKind.RESPONSE, ClockKind.DECISION}


def test_a_move_on_a_lead_already_decided_is_a_message_not_an_error(
    client, rep, sales_manager, marketer
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    client.post(reverse("sla_queue:accept", args=[lead.pk]))
    response = client.post(reverse("sla_queue:accept", args=[lead.pk]), follow=True)
    assert response.status_code == 200
    assert "was not accepted" in html.unescape(response.content.decode())


def test_the_moves_are_posts_only(client, rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    assert client.get(reverse("sla_queue:accept", args=[lead.pk])).status_code == 405


# --- what a sales manager and marketing see -------------------------------------------------------


def test_the_manager_sees_every_queue_unassigned_mqls_and_clocks_at_risk(
    client, rep, other_rep, sales_manager, marketer
):
    fresh = mql_assigned_to(rep, sales_manager, marketer)
    late = mql_assigned_to(other_rep, sales_manager, marketer)
    make_overdue(late)
    unassigned = LeadFactory(stage=Stage.NURTURING)
    lead_move(lead=unassigned, to=Stage.MQL, by=marketer)
    assert Lead.objects.get(pk=unassigned.pk).owner is None
    text = get(client, sales_manager)
    assert 'id="team-summary"' in text
    assert set(row_ids(text, "team")) == {fresh.pk, late.pk}
    at_risk = text.split('id="at-risk"')[1].split('id="unassigned"')[0]
    assert late.display_name in at_risk and fresh.display_name not in at_risk
    assert "Breached" in at_risk and "overdue" in at_risk  # "overdue by …" in working hours
    block = text.split('id="unassigned"')[1].split("rep-queue")[0]
    assert unassigned.display_name in block
    assert f'href="/leads/{unassigned.pk}/#assign"' in block
    team = queue.team_queue(now=timezone.now())
    counts = {q.rep.username: (q.count, q.breached) for q in team.reps}
    assert counts["rep"] == (1, 0) and counts["other_rep"] == (1, 1)


def test_marketing_sees_the_team_read_only(client, rep, sales_manager, marketer):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    text = get(client, marketer)
    assert 'id="read-only"' in text
    assert lead.display_name in text
    assert "Accept</button>" not in text and "Reject this MQL" not in text


def test_a_sales_manager_or_admin_may_act_on_any_reps_lead_from_the_team_view(
    client, rep, sales_manager, admin_user, marketer
):
    lead = mql_assigned_to(rep, sales_manager, marketer)
    other = mql_assigned_to(rep, sales_manager, marketer)
    text = get(client, admin_user)
    assert set(row_ids(text, "team")) == {lead.pk, other.pk}
    assert f'action="/sla/queue/{lead.pk}/accept/"' in text
    client.force_login(sales_manager)
    client.post(reverse("sla_queue:touch", args=[lead.pk]), {"kind": "call"})
    client.force_login(admin_user)
    client.post(reverse("sla_queue:accept", args=[other.pk]))
    dispatch()
    assert Touchpoint.objects.filter(lead=lead, kind="call").exists()
    assert Lead.objects.get(pk=other.pk).stage == Stage.SAL


def test_the_queue_is_for_team_members_only(client, outsider):
    client.force_login(outsider)
    assert client.get(URL).status_code == 403


def test_the_nav_links_the_queue_for_sales_and_the_reports_for_everybody(
    client, rep, marketer, sales_manager
):
    assert 'href="/sla/queue/"' in get(client, rep, "/sla/agreement/")
    assert 'href="/sla/queue/"' in get(client, sales_manager, "/sla/agreement/")
    marketing = get(client, marketer, "/sla/agreement/")
    assert 'href="/sla/queue/"' not in marketing and 'href="/sla/reports/"' in marketing


# --- a fixed number of queries --------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 30])
def test_the_rep_queue_is_a_fixed_number_of_queries(
    client, rep, sales_manager, marketer, django_assert_num_queries, count
):
    for _ in range(count):
        mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    with django_assert_num_queries(REP_QUERIES):
        response = client.get(URL)
    assert len(row_ids(response.content.decode())) == count


@pytest.mark.parametrize("count", [1, 30])
def test_the_team_view_is_a_fixed_number_of_queries(
    client, rep, other_rep, sales_manager, marketer, django_assert_num_queries, count
):
    for n in range(count):
        lead = mql_assigned_to(rep if n % 2 else other_rep, sales_manager, marketer)
        if n % 3 == 0:
            clocks_flag(now=running(lead)[ClockKind.RESPONSE].warn_at)
    for _ in range(count):
        lead_move(lead=LeadFactory(stage=Stage.NURTURING), to=Stage.MQL, by=marketer)
    client.force_login(sales_manager)
    with django_assert_num_queries(MANAGER_QUERIES):
        response = client.get(URL)
    assert len(row_ids(response.content.decode(), "team")) == count
