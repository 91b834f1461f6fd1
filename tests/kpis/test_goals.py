"""Shared goals: progress, trend and forecast from the figures' selectors, and who sets them."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alignment.lib.business_time import Calendar
from alignment.lib.errors import DomainError, PermissionDenied
from kpis.models import Goal, Metric, PeriodKind
from kpis.selectors import goals_board
from kpis.selectors.goals import METRICS, goal_period
from kpis.services import goal_create, goal_delete, goal_update
from leads.models import Stage
from sla.selectors import agreement_active
from tests.kpis.history import TZ, new_lead, reads, settle, utc, walk, won_path

pytestmark = pytest.mark.django_db

# Thursday of W47, 11:00 UTC: exactly half the week (Mon 00:00 Berlin = Sun 23:00 UTC) is gone
AT = utc(11, 19, 11)


@pytest.fixture
def history():
    created = utc(10, 1, 9)
    # W45 one MQL, W46 two (one of them won in W47)
    walk(new_lead(created), (Stage.MQL, utc(11, 3, 9)))
    walk(new_lead(created), (Stage.MQL, utc(11, 10, 9)))
    won_path(new_lead(created), 14, 2000)  # MQL Sat 14th, won Wed 18th
    # W47: X an MQL at Monday 00:30 in Berlin; B rejected as "not ready", an MQL again, accepted
    walk(new_lead(created), (Stage.MQL, utc(11, 15, 23, 30)))
    walk(
        new_lead(created),
        (Stage.MQL, utc(11, 16, 10)),
        (Stage.REJECTED, utc(11, 16, 12), {"reason": "not_ready"}),
        (Stage.MQL, utc(11, 17, 9)),
        (Stage.SAL, utc(11, 17, 10)),
    )
    # after AT: not counted yet
    walk(new_lead(created), (Stage.MQL, utc(11, 20, 9)))
    settle()


def _goal(metric, kind, start, target, *, marketing=False, sales=False):
    return Goal.objects.create(
        metric=metric,
        period_kind=kind,
        period_start=start,
        target=target,
        marketing=marketing,
        sales=sales,
    )


@pytest.fixture
def goals(history):
    return {
        "mqls": _goal(
            Metric.MQLS_DELIVERED, PeriodKind.WEEK, date(2026, 11, 16), 10, marketing=True
        ),
        "rate": _goal(
            Metric.MQL_ACCEPTANCE_RATE,
            PeriodKind.WEEK,
            date(2026, 11, 16),
            50,
            marketing=True,
            sales=True,
        ),
        "revenue": _goal(
            Metric.REVENUE_WON, PeriodKind.MONTH, date(2026, 11, 1), 10000, sales=True
        ),
        "won": _goal(Metric.CUSTOMERS_WON, PeriodKind.QUARTER, date(2026, 10, 1), 4, sales=True),
        # next week's goal is not on this week's board
        "later": _goal(
            Metric.MQLS_DELIVERED, PeriodKind.WEEK, date(2026, 11, 23), 10, marketing=True
        ),
    }


def test_the_board_puts_marketings_and_sales_goals_side_by_side(goals):
    board = goals_board(at=AT, tz=TZ)
    assert [p.metric for p in board.marketing] == [Metric.MQLS_DELIVERED]
    assert [p.metric for p in board.shared] == [Metric.MQL_ACCEPTANCE_RATE]
    assert [p.metric for p in board.sales] == [Metric.REVENUE_WON, Metric.CUSTOMERS_WON]


def test_a_count_is_forecast_linearly_and_trended_by_week(goals):
    board = goals_board(at=AT, tz=TZ)
    (mqls,) = board.marketing
    # X, and B twice (re-MQL after recycle); the MQL after AT is not counted yet
    assert (mqls.actual, mqls.share, mqls.elapsed) == (Decimal(3), 30.0, 0.5)
    assert mqls.forecast == Decimal("6.00")  # 3 / half the week
    assert mqls.on_track is False
    assert [(t.label, t.actual) for t in mqls.trend] == [
        ("2026-W43", 0),
        ("2026-W44", 0),
        ("2026-W45", 1),
        ("2026-W46", 2),
    ]


def test_a_rate_is_forecast_as_it_stands(goals):
    (rate,) = goals_board(at=AT, tz=TZ).shared
    # B's first MQL rejected, its second accepted; X undecided
    assert (rate.actual, rate.share, rate.forecast, rate.on_track) == (
        Decimal("50.0"),
        100.0,
        Decimal("50.0"),
        True,
    )
    assert rate.teams == ("marketing", "sales")


def test_a_month_and_a_quarter(goals):
    revenue, won = goals_board(at=AT, tz=TZ).sales
    assert revenue.period.label == "2026-11"
    assert (revenue.actual, revenue.share) == (Decimal("2000.00"), 20.0)
    # 18.5 of November's 30 days gone: 2,000 x 30 / 18.5
    assert revenue.forecast == Decimal("3243.24")
    assert [t.label for t in revenue.trend] == ["2026-07", "2026-08", "2026-09", "2026-10"]
    assert won.period.label == "2026-Q4"
    # the quarter starts at midnight in Berlin, still summer time on 1 October
    assert won.period.start == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert won.period.end == datetime(2026, 12, 31, 23, tzinfo=UTC)
    assert won.actual == Decimal(1)
    assert [t.label for t in won.trend] == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]


def test_a_finished_period_forecasts_its_actual_and_a_future_one_nothing(goals):
    after = goals_board(at=utc(11, 23, 12), tz=TZ)
    assert [p.period.label for p in after.marketing] == ["2026-W48"]
    week = goal_period(PeriodKind.WEEK, date(2026, 11, 16), tz=TZ)
    assert week.start == datetime(2026, 11, 15, 23, tzinfo=UTC)
    before = goals_board(at=utc(10, 1, 12), tz=TZ)
    assert before.marketing == ()


def test_the_board_costs_a_fixed_number_of_queries(goals):
    with CaptureQueriesContext(connection) as queries:
        goals_board(at=AT, tz=TZ)
    # the goals, then for each of 5 periods (this one and 4 before): MQLs 1, acceptance 1 (the
    # rollup), revenue 1, customers won 1
    assert len(reads(queries)) == 1 + 5 * (1 + 1 + 1 + 1)


def test_every_metric_has_its_selector():
    assert set(METRICS) == set(Metric.values)


# --- setting goals ------------------------------------------------------------------------------


def _create(by, **overrides):
    fields = {
        "metric": Metric.MQLS_DELIVERED,
        "period_kind": PeriodKind.WEEK,
        "period_start": date(2026, 11, 16),
        "target": "40",
        "marketing": True,
    }
    return goal_create(by=by, **{**fields, **overrides})


def test_managers_and_admins_set_goals_for_their_teams(people):
    goal = _create(people["marketing_manager"])
    assert (goal.target, goal.teams, goal.created_by) == (
        Decimal("40"),
        ("marketing",),
        people["marketing_manager"],
    )
    shared = _create(people["sales_manager"], metric=Metric.REVENUE_WON, sales=True)
    assert shared.teams == ("marketing", "sales")
    _create(people["admin"], metric=Metric.CUSTOMERS_WON, marketing=False, sales=True)
    for who in ("marketer", "rep"):
        with pytest.raises(PermissionDenied, match="may not do goal.manage"):
            _create(people[who], metric=Metric.PIPELINE_CREATED)
    with pytest.raises(DomainError, match="ask a sales manager to set a goal for sales alone"):
        _create(
            people["marketing_manager"], metric=Metric.PIPELINE_CREATED, marketing=False, sales=True
        )
    with pytest.raises(DomainError, match="ask a marketing manager"):
        goal_update(goal=goal, by=people["sales_manager"], target=50)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"period_start": date(2026, 11, 18)}, "starts on a Monday; Wednesday 18 November 2026"),
        ({"period_kind": PeriodKind.QUARTER, "period_start": date(2026, 11, 1)}, "April, July"),
        ({"target": "0"}, "greater than zero"),
        ({"target": "many"}, "must be a number"),
        ({"metric": Metric.MQL_ACCEPTANCE_RATE, "target": "120"}, "at most 100"),
        ({"marketing": False}, "to marketing, to sales or to both"),
        ({"metric": "happiness"}, "one of the listed figures"),
    ],
)
def test_a_wrong_goal_is_refused_in_words(people, overrides, message):
    with pytest.raises(DomainError, match=message):
        _create(people["admin"], **overrides)
    assert not Goal.objects.exists()


def test_one_goal_per_figure_and_period_and_changing_it(people):
    goal = _create(people["marketing_manager"])
    with pytest.raises(DomainError, match="already a goal for MQLs delivered"):
        _create(people["admin"], target="10")
    changed = goal_update(goal=goal, by=people["marketing_manager"], target="45.5", sales=True)
    assert (changed.target, changed.teams) == (Decimal("45.5"), ("marketing", "sales"))
    goal_delete(goal=changed, by=people["sales_manager"])
    assert not Goal.objects.exists()


def test_periods_are_cut_in_the_agreements_zone_by_default(db):
    agreement = agreement_active()
    expected = Calendar.from_json(agreement.calendar).timezone if agreement else settings.TIME_ZONE
    assert goals_board(at=AT).timezone == expected
