"""The shared KPI selectors on a hand-built history of events and clocks."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alignment.lib.errors import DomainError
from kpis import selectors
from leads.models import EventType, LeadEvent, Stage
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.selectors import agreement_active
from tests.factories import CampaignFactory, LeadFactory, RepFactory, SourceFactory
from tests.kpis.history import logged_event as event
from tests.kpis.history import logged_move as move

pytestmark = pytest.mark.django_db

TZ = "Europe/Berlin"
W47 = selectors.iso_week_period("2026-W47", tz=TZ)
W48 = selectors.iso_week_period("2026-W48", tz=TZ)
# Wednesday of W47, 10:00 UTC
WED47 = datetime(2026, 11, 18, 10, tzinfo=UTC)


def clock(lead, owner, kind, started, *, status, hours=None, due_hours=4, cancelled=False):
    due = started + timedelta(hours=due_hours)
    ended = (
        None
        if status in (ClockStatus.PENDING, ClockStatus.WARNED)
        else started + timedelta(hours=hours or due_hours)
    )
    return SlaClock.objects.create(
        lead=lead,
        kind=kind,
        agreement=agreement_active(),
        owner=owner,
        status=status,
        start_event_id=SlaClock.objects.count() + 10_000,
        started_at=started,
        warn_at=started + timedelta(hours=3),
        due_at=due,
        ended_at=ended,
        met_at=ended if not cancelled and ended else None,
        business_seconds=int(hours * 3600) if hours is not None else None,
    )


def test_an_iso_week_is_cut_in_the_agreements_zone():
    assert W47.start == datetime(2026, 11, 15, 23, tzinfo=UTC)  # Monday 00:00 in Berlin
    assert W47.end == datetime(2026, 11, 22, 23, tzinfo=UTC)
    assert (W47.first_day.isoformat(), W47.last_day.isoformat()) == ("2026-11-16", "2026-11-22")
    assert selectors.weeks_back("2027-W01", 3) == ["2026-W52", "2026-W53", "2027-W01"]
    assert selectors.months_back("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]
    month = selectors.month_period("2026-11", tz=TZ)
    assert month.start == datetime(2026, 10, 31, 23, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["2026-47", "2026-W54", "W47", "", "2026-W4x"])
def test_a_bad_week_is_refused_in_words(bad):
    with pytest.raises(DomainError, match="like 2026-W47"):
        selectors.iso_week_period(bad, tz=TZ)


def test_an_mql_of_w47_accepted_in_w48_counts_as_accepted_in_w47():
    google, linkedin = SourceFactory(name="Google"), SourceFactory(name="LinkedIn")
    late = LeadFactory(source=google)
    move(late, Stage.MQL, WED47, frm=Stage.NEW)
    move(late, Stage.SAL, WED47 + timedelta(days=6), frm=Stage.MQL)  # Tuesday of W48
    rejected = LeadFactory(source=linkedin)
    move(rejected, Stage.MQL, WED47, frm=Stage.NEW)
    move(rejected, Stage.REJECTED, WED47 + timedelta(hours=2), frm=Stage.MQL, reason="no_budget")
    recycled = LeadFactory(source=linkedin)
    move(recycled, Stage.MQL, WED47, frm=Stage.NEW)
    move(recycled, Stage.RECYCLED, WED47 + timedelta(hours=1), frm=Stage.MQL, reason="not_ready")
    undecided = LeadFactory(source=google)
    move(undecided, Stage.MQL, WED47 + timedelta(days=1), frm=Stage.NEW)
    # an MQL of W46 decided in W47 belongs to W46
    earlier = LeadFactory(source=google)
    move(earlier, Stage.MQL, WED47 - timedelta(days=7), frm=Stage.NEW)
    move(earlier, Stage.SAL, WED47, frm=Stage.MQL)
    # the recycled lead qualifies again in W48: a second MQL, in W48's cohort
    move(recycled, Stage.MQL, WED47 + timedelta(days=7), frm=Stage.RECYCLED)
    move(recycled, Stage.SAL, WED47 + timedelta(days=7, hours=1), frm=Stage.MQL)

    w47 = selectors.mql_acceptance(period=W47)
    assert (w47.mqls, w47.accepted, w47.rejected, w47.undecided) == (4, 1, 2, 1)
    assert w47.rate == pytest.approx(33.3)
    w48 = selectors.mql_acceptance(period=W48)
    assert (w48.mqls, w48.accepted, w48.rejected, w48.rate) == (1, 1, 0, 100.0)
    assert selectors.mqls_delivered(period=W47, source_id=google.pk) == 2
    by_google = selectors.mql_acceptance(period=W47, source_id=google.pk)
    assert (by_google.accepted, by_google.undecided, by_google.rate) == (1, 1, 100.0)

    reasons = selectors.rejection_reasons_by_source(period=W47)
    assert [(r.source, r.reason, r.count) for r in reasons] == [
        ("LinkedIn", "No budget", 1),
        ("LinkedIn", "Not ready yet (recycle to marketing)", 1),
    ]
    assert selectors.rejection_reasons_by_source(period=W48) == []


def test_pipeline_counts_in_the_week_a_lead_entered_opportunity():
    lead = LeadFactory()
    move(lead, Stage.OPPORTUNITY, WED47, frm=Stage.SQL, deal_value="1200.50")
    other = LeadFactory()
    move(other, Stage.OPPORTUNITY, WED47 + timedelta(days=1), frm=Stage.SQL, deal_value="800")
    later = LeadFactory()
    move(later, Stage.OPPORTUNITY, WED47 + timedelta(days=7), frm=Stage.SQL, deal_value="99")
    move(lead, Stage.WON, WED47 + timedelta(days=7), frm=Stage.OPPORTUNITY, deal_value="1500")

    assert selectors.pipeline_created(period=W47) == selectors.Pipeline(2, Decimal("2000.50"))
    assert selectors.pipeline_created(period=W48) == selectors.Pipeline(1, Decimal("99.00"))
    count, total, won = selectors.won_customers(period=W48)
    assert (count, total) == (1, Decimal("1500.00"))
    assert [(w.lead_id, w.deal_value) for w in won] == [(lead.pk, Decimal("1500"))]
    assert selectors.won_customers(period=W47)[0] == 0


def test_speed_to_lead_median_and_p90_come_from_the_touched_response_clocks():
    rep = RepFactory(username="ann", first_name="Ann", last_name="Lee")
    other = RepFactory(username="bob", first_name="Bob", last_name="Ray")
    lead = LeadFactory()
    for hours in (1, 2, 3, 4):  # met by the due time (4 h)
        clock(lead, rep, ClockKind.RESPONSE, WED47, status=ClockStatus.MET, hours=hours)
    clock(lead, other, ClockKind.RESPONSE, WED47, status=ClockStatus.BREACHED, hours=10)
    clock(lead, other, ClockKind.RESPONSE, WED47, status=ClockStatus.PENDING)
    clock(lead, other, ClockKind.RESPONSE, WED47, status=ClockStatus.CANCELLED, cancelled=True)
    # another week's and the decision clocks do not count
    clock(lead, rep, ClockKind.RESPONSE, WED47 + timedelta(days=7), status=ClockStatus.MET, hours=1)
    clock(lead, other, ClockKind.DECISION, WED47, status=ClockStatus.BREACHED, hours=30)

    speed = selectors.speed_to_lead(period=W47)
    # 1, 2, 3, 4, 10: median 3; p90 at rank 3.6 = 4 + 0.6 x 6
    assert speed == selectors.SpeedToLead(responded=5, median_hours=3.0, p90_hours=7.6)
    assert selectors.speed_to_lead(period=W47, rep_id=rep.pk).median_hours == 2.5
    assert selectors.speed_to_lead(period=W48, rep_id=other.pk).responded == 0

    by_rep = selectors.speed_to_lead_by(period=W47, group_by="rep")
    # bob's breached clock was touched (10 h) and his pending one not: slowest first
    assert [
        (r.name, r.started, r.met, r.responded, r.median_hours, r.p90_hours) for r in by_rep
    ] == [
        ("Bob Ray", 2, 0, 1, 10.0, 10.0),
        ("Ann Lee", 4, 4, 4, 2.5, 3.7),  # 1, 2, 3, 4: p90 at rank 2.7 = 3 + 0.7
    ]
    assert [r.attainment for r in by_rep] == [0.0, 100.0]
    (by_source,) = selectors.speed_to_lead_by(period=W47, group_by="source")
    assert (by_source.name, by_source.started, by_source.responded) == ("Unknown source", 6, 5)
    assert (by_source.median_hours, by_source.p90_hours) == (speed.median_hours, speed.p90_hours)
    assert selectors.speed_to_lead_by(period=W47, group_by="source", source_id=-1) == []

    attainment = selectors.sla_response_attainment(period=W47)
    assert (attainment.started, attainment.met, attainment.breached, attainment.running) == (
        6,
        4,
        1,
        1,
    )
    assert attainment.share == pytest.approx(66.7)

    breaches = selectors.sla_breaches_by_rep(period=W47)
    assert [(b.rep_id, b.response, b.decision, b.total) for b in breaches] == [(other.pk, 1, 1, 2)]


def test_open_clocks_are_read_as_of_an_instant_by_rep():
    rep = RepFactory(username="ann", first_name="Ann", last_name="Lee")
    lead = LeadFactory()
    clock(lead, rep, ClockKind.RESPONSE, WED47, status=ClockStatus.PENDING)
    clock(lead, rep, ClockKind.DECISION, WED47 + timedelta(hours=5), status=ClockStatus.PENDING)
    clock(lead, None, ClockKind.RESPONSE, WED47, status=ClockStatus.MET, hours=2)

    at = WED47 + timedelta(hours=6)
    rows = selectors.sla_clocks_open(at=at)
    assert [(r.rep, r.open, r.overdue) for r in rows] == [("Ann Lee", 2, 1)]
    # an hour in, the met clock was still running, unassigned
    early = selectors.sla_clocks_open(at=WED47 + timedelta(hours=1))
    assert sorted((r.rep, r.open, r.overdue) for r in early) == [
        ("Ann Lee", 1, 0),
        ("Unassigned", 1, 0),
    ]


def test_each_figure_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    for n in range(30):
        lead = LeadFactory()
        move(lead, Stage.MQL, WED47, frm=Stage.NEW)
        move(lead, Stage.REJECTED, WED47, frm=Stage.MQL, reason="no_budget")
        move(lead, Stage.OPPORTUNITY, WED47, frm=Stage.SQL, deal_value=n)
    with django_assert_max_num_queries(2):
        selectors.mql_acceptance(period=W47)
    with django_assert_max_num_queries(2):
        selectors.rejection_reasons_by_source(period=W47)
    with django_assert_max_num_queries(1):
        selectors.pipeline_created(period=W47)


def test_the_campaign_filter_reads_the_leads_campaign():
    spring, autumn = CampaignFactory(), CampaignFactory()
    for campaign, value in ((spring, "100"), (autumn, "40"), (autumn, "2")):
        lead = LeadFactory(campaign=campaign)
        move(lead, Stage.MQL, WED47, frm=Stage.NEW)
        move(lead, Stage.OPPORTUNITY, WED47, frm=Stage.SQL, deal_value=value)
    assert selectors.mqls_delivered(period=W47, campaign_id=autumn.pk) == 2
    assert selectors.pipeline_created(period=W47, campaign_id=spring.pk).value == Decimal("100")


def touch(lead, at, kind="call", *, sales=True):
    return event(lead, EventType.TOUCHPOINT_RECORDED, at, kind=kind, sales=sales)


def accept(lead, at, by):
    payload = {"from": Stage.MQL, "to": Stage.SAL}
    LeadEvent.objects.create(
        lead=lead, type=EventType.LEAD_STAGE_CHANGED, occurred_at=at, payload=payload, actor=by
    )
    LeadEvent.objects.create(
        lead=lead, type=EventType.LEAD_ACCEPTED, occurred_at=at, payload=payload, actor=by
    )


def followup(*, now, period=W47, rep_id=None):
    return selectors.followup_attainment(period=period, attempts=3, days=10, now=now, rep_id=rep_id)


def test_followup_counts_the_sales_attempts_within_the_days_after_acceptance():
    rep = RepFactory(username="ann")
    kept = LeadFactory()
    accept(kept, WED47, rep)
    for day in (0, 2, 9):
        touch(kept, WED47 + timedelta(days=day, hours=1))
    short = LeadFactory()  # two calls and a note: not kept
    accept(short, WED47, rep)
    touch(short, WED47 + timedelta(hours=1))
    touch(short, WED47 + timedelta(days=1), "sales_email")
    touch(short, WED47 + timedelta(days=2), "note")
    late = LeadFactory()  # the third call comes on day 11; a marketing touch and a call before
    accept(late, WED47, rep)  # the acceptance count for nothing either
    touch(late, WED47 + timedelta(hours=1), "meeting")
    touch(late, WED47 + timedelta(days=1))
    touch(late, WED47 + timedelta(days=3), "web_visit", sales=False)
    touch(late, WED47 - timedelta(hours=1))
    touch(late, WED47 + timedelta(days=10, hours=1))

    # ten days after Wednesday's acceptances
    result = followup(now=WED47 + timedelta(days=10))
    assert result == selectors.Followup(
        accepted=3, due=3, kept=1, open=0, kept_so_far=0, share=33.3, median_attempts=2.0
    )
    # the week after: nothing accepted
    assert followup(now=WED47 + timedelta(days=20), period=W48).accepted == 0
    assert followup(now=WED47 + timedelta(days=20), period=W48).share is None


def test_an_acceptance_whose_window_is_still_open_is_not_due_yet():
    rep = RepFactory(username="ann")
    early, recent = LeadFactory(), LeadFactory()
    accept(early, WED47 - timedelta(days=2), rep)  # Monday of W47
    for hours in (1, 2, 3):
        touch(early, WED47 - timedelta(days=2) + timedelta(hours=hours))
    accept(recent, WED47 + timedelta(days=3), rep)  # Saturday of W47
    for hours in (1, 2, 3):
        touch(recent, WED47 + timedelta(days=3, hours=hours))
    # a lead accepted twice counts per acceptance; its second window has only one call
    accept(early, WED47 + timedelta(days=3), rep)
    touch(early, WED47 + timedelta(days=3, hours=4))

    # Wednesday of W48: Monday's window is over, Saturday's windows are not
    result = followup(now=WED47 + timedelta(days=8))
    assert (result.accepted, result.due, result.kept, result.open, result.kept_so_far) == (
        3,
        1,
        1,
        2,
        1,
    )
    # Monday's window also holds the call after the second acceptance: 4 attempts
    assert (result.share, result.median_attempts) == (100.0, 4.0)
    # a touch after now does not count yet: on Saturday at 12:00 only Monday's window is kept
    saturday = followup(now=WED47 + timedelta(days=3, hours=2))
    assert (saturday.due, saturday.open, saturday.kept_so_far) == (0, 3, 1)


def test_the_followup_rep_filter_reads_who_accepted():
    ann, bob = RepFactory(username="ann"), RepFactory(username="bob")
    for rep, calls in ((ann, 3), (bob, 1), (bob, 4)):
        lead = LeadFactory()
        accept(lead, WED47, rep)
        for n in range(calls):
            touch(lead, WED47 + timedelta(hours=n + 1))
    now = WED47 + timedelta(days=11)
    assert (followup(now=now, rep_id=ann.pk).kept, followup(now=now, rep_id=ann.pk).due) == (1, 1)
    by_bob = followup(now=now, rep_id=bob.pk)
    assert (by_bob.accepted, by_bob.kept, by_bob.share, by_bob.median_attempts) == (
        2,
        1,
        50.0,
        2.5,
    )


def test_followup_costs_one_query_whatever_the_number_of_leads(django_assert_num_queries):
    rep = RepFactory()
    for n in range(30):
        lead = LeadFactory()
        accept(lead, WED47, rep)
        for hours in range(n % 5):
            touch(lead, WED47 + timedelta(hours=hours))
    with django_assert_num_queries(1):
        result = followup(now=WED47 + timedelta(days=10))
    assert (result.accepted, result.due, result.kept) == (30, 30, 12)
