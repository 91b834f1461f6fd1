"""The weekly SLA report: its figures, the archive, the exactly-once email through a real SMTP
server, the pages, the command and the beat schedule."""

import io
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections

from kpis import selectors
from leads.models import EventType, LeadEvent, Stage
from sla import tasks
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.models import Agreement, CommitmentPeriod
from sla.report import services
from sla.report.figures import commitments_for, report_figures
from sla.report.models import DeliveryStatus, SlaReport, SlaReportDelivery
from sla.selectors import agreement_active
from tests.factories import LeadFactory, RepFactory, SourceFactory, UserFactory
from tests.kpis.history import logged_event as event
from tests.kpis.history import logged_move as move

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two connections racing for a row need PostgreSQL; SQLite serialises every write",
)

WEEK = "2026-W47"
WED47 = datetime(2026, 11, 18, 10, tzinfo=UTC)
# Monday of W48, 08:05 in Berlin (the agreement's zone): W47's report is due
MONDAY_0805 = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)
RECIPIENTS = ["team@example.com", "Boss@Example.com"]


def clock(lead, owner, kind, started, *, status, hours=None):
    ended = None if status == ClockStatus.PENDING else started + timedelta(hours=hours or 5)
    return SlaClock.objects.create(
        lead=lead,
        kind=kind,
        agreement=agreement_active(),
        owner=owner,
        status=status,
        start_event_id=SlaClock.objects.count() + 10_000,
        started_at=started,
        warn_at=started + timedelta(hours=3),
        due_at=started + timedelta(hours=4),
        ended_at=ended,
        met_at=ended,
        business_seconds=int(hours * 3600) if hours is not None else None,
    )


def set_agreement(**fields):
    Agreement.objects.filter(pk=agreement_active().pk).update(**fields)


@pytest.fixture
def history(db):
    """Week 47 in Berlin: four MQLs (one accepted in W48, one rejected, two undecided), an
    opportunity, a won customer named <script>, clocks of two reps (one named in markup)."""
    set_agreement(
        report_recipients=RECIPIENTS,
        report_to_managers=True,
        mqls_committed=4,
        acceptance_rate_committed=Decimal("50"),
        pipeline_committed=Decimal("1000"),
        commitment_period=CommitmentPeriod.WEEK,
        review_date=date(2026, 12, 31),
    )
    UserFactory(username="mm", role="marketing_manager", email="mm@example.com")
    UserFactory(username="sm", role="sales_manager", email="boss@example.com")  # same as Boss@
    ann = RepFactory(username="ann", first_name="Ann", last_name="Lee")
    bad = RepFactory(username="bad", first_name="<b>Bold</b>", last_name="Rep")
    google = SourceFactory(name="Google")
    leads = [LeadFactory(source=google, owner=ann) for _ in range(4)]
    for lead in leads:
        move(lead, Stage.MQL, WED47, frm=Stage.NEW)
    move(leads[0], Stage.SAL, WED47 + timedelta(days=6), frm=Stage.MQL)  # accepted in W48
    move(leads[1], Stage.REJECTED, WED47 + timedelta(hours=3), frm=Stage.MQL, reason="no_budget")
    winner = LeadFactory(company="<script>alert(1)</script>", owner=ann, source=google)
    move(winner, Stage.OPPORTUNITY, WED47, frm=Stage.SQL, deal_value="2500.00")
    move(winner, Stage.WON, WED47 + timedelta(days=1), frm=Stage.OPPORTUNITY, deal_value="3000")
    for hours in (1, 2, 3):
        clock(leads[0], ann, ClockKind.RESPONSE, WED47, status=ClockStatus.MET, hours=hours)
    clock(leads[1], bad, ClockKind.RESPONSE, WED47, status=ClockStatus.BREACHED, hours=9)
    clock(leads[2], bad, ClockKind.DECISION, WED47, status=ClockStatus.PENDING)
    return {"ann": ann, "bad": bad, "leads": leads, "winner": winner}


def parsed(envelope):
    return message_from_bytes(envelope.content, policy=policy.default)


def test_the_figures_of_a_week_by_cohort(history):
    figures = report_figures(week=WEEK, agreement=agreement_active(), now=MONDAY_0805)

    marketing, sales = figures["marketing"], figures["sales"]
    assert marketing["mqls_delivered"] == 4 and marketing["mqls_met"]
    # the MQL accepted in W48 counts in W47: 1 accepted of 2 decided
    assert marketing["acceptance"] == {
        "mqls": 4,
        "accepted": 1,
        "rejected": 1,
        "undecided": 2,
        "rate": 50.0,
    }
    assert marketing["pipeline"] == {"opportunities": 1, "value": "2500.00"}
    assert marketing["rejection_reasons"][0]["source"] == "Google"
    assert marketing["rejection_reasons"][0]["reason"] == "No budget"
    assert sales["mqls_received"] == 4
    assert sales["response"] == {"started": 4, "met": 3, "breached": 1, "running": 0, "share": 75.0}
    assert sales["speed_to_lead"] == {"responded": 4, "median_hours": 2.5, "p90_hours": 7.2}
    assert [(b["rep"], b["total"]) for b in sales["breaches_by_rep"]] == [("<b>Bold</b> Rep", 1)]
    assert sales["open_clocks"]["total"] == 1 and sales["open_clocks"]["overdue"] == 1
    assert [t["week"] for t in figures["trend"]] == ["2026-W44", "2026-W45", "2026-W46", WEEK]
    assert figures["trend"][-1]["mqls"] == 4
    assert figures["won"]["count"] == 1
    assert figures["won"]["customers"][0]["customer"] == "<script>alert(1)</script>"
    assert figures["period"]["partial"] is False
    assert figures["agreement"]["review_due"] is False


def test_the_report_shows_sales_follow_up_against_the_agreement(
    history, smtp_server, client, marketer
):
    """Three acceptances of W47 by Ann: Monday's two windows (10 days) have closed by Thursday
    of W48, one with 3 calls, one with a call and a note; Saturday's is open, 3 calls already."""
    set_agreement(followup_attempts=3, followup_days=10)
    ann = history["ann"]
    monday = WED47 - timedelta(days=2)
    saturday = WED47 + timedelta(days=3)
    kept, short, recent = (LeadFactory(owner=ann) for _ in range(3))
    for lead, at in ((kept, monday), (short, monday), (recent, saturday)):
        LeadEvent.objects.create(
            lead=lead, type=EventType.LEAD_ACCEPTED, occurred_at=at, payload={}, actor=ann
        )
    for lead, at, kinds in (
        (kept, monday, ("call", "sales_email", "meeting")),
        (short, monday, ("call", "note")),
        (recent, saturday, ("call", "call", "call")),
    ):
        for day, kind in enumerate(kinds):
            event(
                lead, EventType.TOUCHPOINT_RECORDED, at + timedelta(days=day), kind=kind, sales=True
            )
    thursday = datetime(2026, 11, 26, 12, tzinfo=UTC)

    services.sla_report_send(week=WEEK, now=thursday)

    figures = SlaReport.objects.get().figures
    assert figures["sales"]["followup"] == {
        "accepted": 3,
        "due": 2,
        "kept": 1,
        "open": 1,
        "kept_so_far": 1,
        "share": 50.0,
        "median_attempts": 2.0,
    }
    assert [t["followup_share"] for t in figures["trend"]] == [None, None, None, 50.0]
    message = parsed(smtp_server.messages[0])
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert (
        "- Follow-up (3 attempts within 10 days of acceptance): 50% (1 of 2 accepted leads "
        "whose window has closed, median 2 attempts; 1 still within their window, 1 with 3 "
        "already)"
    ) in text
    assert "(MQLs / acceptance / pipeline / responded in time / followed up)" in text
    assert "2026-W47 (16 Nov): 4 / 50% / €2,500 / 75% / 50%" in text
    client.force_login(marketer)
    page = client.get(f"/sla/reports/{WEEK}/").content.decode()
    for part in (html, page):
        assert "Follow-up: 3 attempts within 10 days of acceptance" in part
        assert (
            "1 of 2 accepted leads whose window has closed (median 2 attempts); "
            "1 still within their window, 1 with 3 already"
        ) in part
        assert ">50%</td>" in part


def test_an_archive_from_before_the_follow_up_figure_still_renders(history, client, marketer):
    report = services.sla_report_build(week=WEEK, now=MONDAY_0805)
    figures = report.figures
    del figures["sales"]["followup"]
    for row in figures["trend"]:
        del row["followup_share"], row["followup_due"]
    SlaReport.objects.filter(pk=report.pk).update(figures=figures)
    client.force_login(marketer)
    page = client.get(f"/sla/reports/{WEEK}/")
    assert page.status_code == 200 and "Follow" not in page.content.decode()
    _, text, html = services.sla_report_render(figures=figures)
    assert "Follow" not in text and "followed up" not in text and "Follow" not in html


def test_a_monthly_commitment_is_pro_rated_to_the_week_and_says_so(history):
    set_agreement(commitment_period=CommitmentPeriod.MONTH, mqls_committed=30)
    period = selectors.iso_week_period(WEEK, tz="Europe/Berlin")
    commitments = commitments_for(agreement=agreement_active(), period=period)
    assert commitments["mqls"] == 7.0  # 30 x 7 / 30 days of November
    assert commitments["pipeline"] == "233.33"
    assert commitments["acceptance_rate"] == 50.0
    assert "x 7 / 30 (days in November 2026)" in commitments["note"]


def test_the_report_arrives_once_per_recipient_with_both_parts_and_escaped_text(
    history, smtp_server
):
    result = services.sla_report_send(week=WEEK, now=MONDAY_0805)

    # the agreement's two addresses and the marketing manager; the sales manager's address is
    # Boss@Example.com again, in another case
    assert sorted(result.sent) == ["Boss@Example.com", "mm@example.com", "team@example.com"]
    assert len(smtp_server.messages) == 3
    assert sorted(rcpt for m in smtp_server.messages for rcpt in m.rcpt_tos) == sorted(result.sent)
    message = parsed(smtp_server.messages[0])
    assert message["Subject"] == (
        "SLA report 2026-W47 (16-22 Nov 2026): 4 MQLs, 75% responded in time"
    )
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "MQLs delivered: 4 / 4" in text
    assert "Acceptance rate: 50% / 50%" in text
    assert "<script>alert(1)</script> (" in text  # plain text is not HTML
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt; Rep" in html
    assert "<img" not in html and "<link" not in html and "<style" not in html
    assert f'href="{settings.SITE_URL}/sla/reports/2026-W47/"' in html
    assert "Open the dashboard" in html
    assert all(d.status == DeliveryStatus.SENT for d in SlaReportDelivery.objects.all())


def test_sending_again_sends_nothing_and_keeps_the_archived_figures(history, smtp_server):
    services.sla_report_send(week=WEEK, now=MONDAY_0805)
    # something happens after the report was archived
    move(LeadFactory(), Stage.MQL, WED47, frm=Stage.NEW)

    again = services.sla_report_send(week=WEEK, now=MONDAY_0805 + timedelta(hours=1))

    assert again.sent == [] and len(again.already_sent) == 3
    assert len(smtp_server.messages) == 3
    report = SlaReport.objects.get()
    assert report.figures["marketing"]["mqls_delivered"] == 4
    assert report.figures["sales"]["response"]["share"] == 75.0
    assert (report.period_start, report.period_end) == (
        datetime(2026, 11, 15, 23, tzinfo=UTC),
        datetime(2026, 11, 22, 23, tzinfo=UTC),
    )


def test_a_failed_send_is_retried_and_then_sent_once(history, smtp_server, settings):
    port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 1  # nobody listens there
    failed = services.sla_report_send(week=WEEK, now=MONDAY_0805)
    assert failed.sent == [] and len(failed.failed) == 3
    assert set(SlaReportDelivery.objects.values_list("status", flat=True)) == {"failed"}
    assert SlaReportDelivery.objects.exclude(error="").count() == 3

    settings.EMAIL_PORT = port
    retried = services.sla_report_send(week=WEEK, now=MONDAY_0805 + timedelta(hours=1))
    assert len(retried.sent) == 3 and len(smtp_server.messages) == 3
    assert set(SlaReportDelivery.objects.values_list("attempts", flat=True)) == {2}


def test_a_claim_left_sending_by_a_dead_worker_is_not_sent_again(history, smtp_server):
    report = services.sla_report_build(week=WEEK, now=MONDAY_0805)
    SlaReportDelivery.objects.create(
        report=report, email="team@example.com", status=DeliveryStatus.SENDING
    )
    result = services.sla_report_send(week=WEEK, now=MONDAY_0805)
    assert "team@example.com" not in result.sent
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "Boss@Example.com",
        "mm@example.com",
    ]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sends_email_each_recipient_once(history, smtp_server):
    barrier = threading.Barrier(2)
    errors = []

    def send():
        try:
            barrier.wait(timeout=10)
            services.sla_report_send(week=WEEK, now=MONDAY_0805)
        except BaseException as error:  # surfaced in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "Boss@Example.com",
        "mm@example.com",
        "team@example.com",
    ]
    assert SlaReport.objects.count() == 1
    assert SlaReportDelivery.objects.filter(status=DeliveryStatus.SENT).count() == 3


def test_a_week_not_over_yet_is_neither_sent_nor_archived(history, smtp_server):
    with pytest.raises(services.DomainError, match="not over yet"):
        services.sla_report_send(week="2026-W48", now=MONDAY_0805)
    assert not SlaReport.objects.exists() and smtp_server.messages == []


def test_the_review_reminder_shows_once_the_review_date_has_passed(history, smtp_server):
    set_agreement(review_date=date(2026, 11, 1))
    services.sla_report_send(week=WEEK, now=MONDAY_0805)
    message = parsed(smtp_server.messages[0])
    assert "review date (1 November 2026) has passed" in message.get_body(("html",)).get_content()
    assert "REMINDER: the agreement's review date" in message.get_body(("plain",)).get_content()


def test_no_reminder_while_the_review_date_is_ahead(history):
    _, text, html = services.sla_report_render(
        figures=report_figures(week=WEEK, agreement=agreement_active(), now=MONDAY_0805)
    )
    assert "REMINDER" not in text and "has passed" not in html


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (datetime(2026, 11, 23, 6, 59, tzinfo=UTC), None),  # Monday 07:59 in Berlin
        (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "2026-W47"),  # Monday 08:00 in Berlin
        (datetime(2026, 11, 26, 12, tzinfo=UTC), "2026-W47"),  # a missed Monday is caught up
        (datetime(2026, 11, 29, 22, 59, tzinfo=UTC), "2026-W47"),  # Sunday 23:59
    ],
)
def test_the_report_is_due_from_monday_0800_in_the_agreements_zone(now, due):
    assert services.sla_report_due_week(now=now) == due


def test_the_due_time_follows_the_agreements_zone_not_the_servers(settings):
    calendar = dict(agreement_active().calendar, timezone="America/New_York")
    set_agreement(calendar=calendar)
    assert settings.TIME_ZONE != "America/New_York"
    # 08:00 in Berlin, 02:00 in New York: not yet
    assert services.sla_report_due_week(now=datetime(2026, 11, 23, 7, tzinfo=UTC)) is None
    assert services.sla_report_due_week(now=datetime(2026, 11, 23, 13, tzinfo=UTC)) == WEEK


def test_the_beat_job_firing_twice_sends_the_report_once(history, smtp_server, monkeypatch):
    monkeypatch.setattr(tasks.timezone, "now", lambda: MONDAY_0805)
    tasks.weekly_report_task.delay()
    tasks.weekly_report_task.delay()
    assert len(smtp_server.messages) == 3
    assert SlaReport.objects.get().week == WEEK


def test_the_beat_schedule_has_the_flagging_job_and_the_weekly_report():
    schedule = settings.CELERY_BEAT_SCHEDULE
    flag = schedule["sla-flag-breaches"]
    assert flag["task"] == "sla.flag_breaches"
    assert flag["schedule"].minute == set(range(60)) and flag["schedule"].hour == set(range(24))
    report = schedule["sla-weekly-report"]
    assert report["task"] == "sla.weekly_report" == tasks.weekly_report_task.name
    assert report["schedule"].minute == {5} and report["schedule"].hour == set(range(24))
    assert report["schedule"].day_of_week == set(range(7))
    assert 0 < report["options"]["expires"] < 3600


def test_the_dry_run_prints_the_text_and_sends_and_archives_nothing(history, smtp_server):
    out = call_command_output("--week", WEEK, "--dry-run")
    assert "WEEKLY SLA REPORT - WEEK 2026-W47" in out
    assert "MQLs delivered: 4 / 4" in out
    assert "would go to 3 recipient(s)" in out
    assert smtp_server.messages == [] and not SlaReport.objects.exists()


def test_the_command_sends_the_week_once(history, smtp_server):
    assert "2026-W47: sent to 3" in call_command_output("--week", WEEK)
    assert "already sent to 3" in call_command_output("--week", WEEK)
    assert len(smtp_server.messages) == 3


@pytest.mark.parametrize("bad", ["2026-47", "2026-W60", "next week"])
def test_a_bad_week_is_a_readable_command_error(bad, smtp_server):
    with pytest.raises(CommandError, match="is not an ISO week: write it like 2026-W47"):
        call_command("send_sla_report", "--week", bad)


def call_command_output(*args) -> str:
    out = io.StringIO()
    call_command("send_sla_report", *args, stdout=out)
    return out.getvalue()


def test_the_archive_is_listed_and_shown_as_sent(history, smtp_server, client, marketer):
    services.sla_report_send(week=WEEK, now=MONDAY_0805)
    client.force_login(marketer)

    listing = client.get("/sla/reports/")
    assert listing.status_code == 200
    assert b'href="/sla/reports/2026-W47/"' in listing.content
    assert b"3 of 3" in listing.content

    page = client.get("/sla/reports/2026-W47/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Week 2026-W47" in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)" not in body
    assert "team@example.com" in body
    assert client.get("/sla/reports/2026-W40/").status_code == 404


def test_the_preview_renders_any_week_without_archiving_it(history, client, marketer):
    client.force_login(marketer)
    page = client.get("/sla/reports/preview/", {"week": WEEK})
    assert page.status_code == 200
    assert "Week 2026-W47" in page.content.decode() and "not archived" in page.content.decode()
    current = client.get("/sla/reports/preview/")
    assert current.status_code == 200 and b"still in progress" in current.content
    bad = client.get("/sla/reports/preview/", {"week": "W47"})
    assert bad.status_code == 400 and b"like 2026-W47" in bad.content
    assert not SlaReport.objects.exists()


def test_the_marketing_side_shows_weeks_and_months_against_the_commitments(
    history, client, marketer
):
    client.force_login(marketer)
    page = client.get("/sla/reports/marketing/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "By week (last 8)" in body and "By month (last 6)" in body
    assert "accepted ÷ decided so far" in body


def test_the_report_pages_are_for_the_two_teams_only(client, outsider):
    client.force_login(outsider)
    assert client.get("/sla/reports/").status_code == 403
    client.logout()
    assert client.get("/sla/reports/preview/").status_code == 302


def test_the_report_list_costs_a_fixed_number_of_queries(
    history, client, marketer, django_assert_max_num_queries
):
    client.force_login(marketer)
    services.sla_report_send(week="2026-W46", now=MONDAY_0805)
    client.get("/sla/reports/")  # warm the session and the agreement lookup paths
    with django_assert_max_num_queries(8) as one:
        client.get("/sla/reports/")
    services.sla_report_send(week=WEEK, now=MONDAY_0805)
    services.sla_report_send(week="2026-W45", now=MONDAY_0805)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = client.get("/sla/reports/")
    assert page.content.count(b"3 of 3") == 3
