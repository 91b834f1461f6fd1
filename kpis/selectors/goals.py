"""Shared goals: progress, trend and forecast, and marketing's and sales' goals side by side.

- Actual: the goal's figure, read by its metric's selector (METRICS) for the goal's period cut at
  `at` (a period in progress counts up to `at`; a finished one whole).
- Progress: actual / target, percent.
- Trend: the actuals of the same figure in the `trend_periods` periods before, oldest first.
- Forecast to period end, linear: for a count or an amount, actual / (share of the period
  elapsed at `at`) (half the week gone and 20 MQLs: 40 forecast); for a rate (acceptance, SLA
  attainment) the rate so far, since a rate does not add up over time. None before the period
  starts; the actual itself once it has ended.
- Periods are cut in the agreement's time zone (its business calendar), or settings.TIME_ZONE
  without an agreement: weeks are ISO weeks, quarters start in January, April, July, October.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q

from alignment.lib.business_time import Calendar
from kpis.models import Goal, Metric, PeriodKind
from kpis.selectors.marketing import mql_acceptance, mqls_delivered, pipeline_created, won_customers
from kpis.selectors.periods import Period, _midnight, iso_week_label, iso_week_period, month_period
from kpis.selectors.sales import sla_response_attainment
from sla.selectors import agreement_active

COUNT, MONEY, PERCENT = "count", "money", "percent"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    unit: str  # COUNT, MONEY or PERCENT (a rate: not extrapolated)
    read: Callable[[Period], Decimal | None]


def _number(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


# one selector per metric code
METRICS: dict[str, MetricSpec] = {
    Metric.MQLS_DELIVERED: MetricSpec(COUNT, lambda p: _number(mqls_delivered(period=p))),
    Metric.MQLS_ACCEPTED: MetricSpec(COUNT, lambda p: _number(mql_acceptance(period=p).accepted)),
    Metric.MQL_ACCEPTANCE_RATE: MetricSpec(
        PERCENT, lambda p: _number(mql_acceptance(period=p).rate)
    ),
    Metric.OPPORTUNITIES_CREATED: MetricSpec(
        COUNT, lambda p: _number(pipeline_created(period=p).opportunities)
    ),
    Metric.PIPELINE_CREATED: MetricSpec(MONEY, lambda p: pipeline_created(period=p).value),
    Metric.CUSTOMERS_WON: MetricSpec(COUNT, lambda p: _number(won_customers(period=p, limit=0)[0])),
    Metric.REVENUE_WON: MetricSpec(MONEY, lambda p: won_customers(period=p, limit=0)[1]),
    Metric.SLA_RESPONSE_ATTAINMENT: MetricSpec(
        PERCENT, lambda p: _number(sla_response_attainment(period=p).share)
    ),
}


# --- periods of a goal ---------------------------------------------------------------------------


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_start_of(kind: str, day: date) -> date:
    """The first day of the period of this kind that holds `day`."""
    if kind == PeriodKind.WEEK:
        return day - timedelta(days=day.weekday())
    if kind == PeriodKind.MONTH:
        return day.replace(day=1)
    return quarter_start(day)


def goal_period(kind: str, start: date, *, tz: str) -> Period:
    """The week, month or quarter that starts on `start`, cut in `tz`."""
    if kind == PeriodKind.WEEK:
        return iso_week_period(iso_week_label(start), tz=tz)
    if kind == PeriodKind.MONTH:
        return month_period(f"{start.year}-{start.month:02d}", tz=tz)
    first, zone = quarter_start(start), ZoneInfo(tz)
    return Period(
        _midnight(first, zone),
        _midnight(_add_months(first, 3), zone),
        f"{first.year}-Q{(first.month - 1) // 3 + 1}",
        PeriodKind.QUARTER,
        tz,
    )


def previous_starts(kind: str, start: date, count: int) -> list[date]:
    """The first days of the `count` periods before the one starting on `start`, oldest first."""
    if kind == PeriodKind.WEEK:
        return [start - timedelta(weeks=n) for n in range(count, 0, -1)]
    step = 1 if kind == PeriodKind.MONTH else 3
    return [_add_months(start, -step * n) for n in range(count, 0, -1)]


def goals_timezone() -> str:
    """The zone goals' periods are cut in: the agreement's calendar's, else the company's."""
    agreement = agreement_active()
    return Calendar.from_json(agreement.calendar).timezone if agreement else settings.TIME_ZONE


# --- progress ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrendPoint:
    label: str
    actual: Decimal | None


@dataclass(frozen=True, slots=True)
class GoalProgress:
    goal_id: int
    metric: str
    label: str
    unit: str
    teams: tuple[str, ...]
    period: Period
    target: Decimal
    actual: Decimal | None  # None: a rate with nothing to count yet
    share: float | None  # actual / target, percent
    elapsed: float  # share of the period gone at `at`, 0 to 1
    forecast: Decimal | None  # at period end (see the module doc)
    trend: tuple[TrendPoint, ...]

    @property
    def on_track(self) -> bool | None:
        return None if self.forecast is None else self.forecast >= self.target


def _elapsed(period: Period, at: datetime) -> float:
    length = (period.end - period.start).total_seconds()
    gone = (min(max(at, period.start), period.end) - period.start).total_seconds()
    return gone / length


def _forecast(unit: str, actual: Decimal | None, elapsed: float) -> Decimal | None:
    if actual is None or elapsed <= 0:
        return None
    if unit == PERCENT or elapsed >= 1:
        return actual
    return (actual / Decimal(str(elapsed))).quantize(Decimal("0.01"))


def goal_progress(
    goal: Goal, *, at: datetime, tz: str | None = None, trend_periods: int = 4
) -> GoalProgress:
    """One goal's actual, share, forecast and trend as of `at`. Costs its selector's queries
    once for the period and once per trend period."""
    tz = tz or goals_timezone()
    spec = METRICS[goal.metric]
    period = goal_period(goal.period_kind, goal.period_start, tz=tz)
    elapsed = _elapsed(period, at)
    actual = spec.read(period.until(at)) if elapsed > 0 else None
    trend = []
    for start in previous_starts(goal.period_kind, period.first_day, trend_periods):
        previous = goal_period(goal.period_kind, start, tz=tz)
        trend.append(
            TrendPoint(
                previous.label, spec.read(previous.until(at)) if previous.start < at else None
            )
        )
    share = round(float(100 * actual / goal.target), 1) if actual is not None else None
    return GoalProgress(
        goal_id=goal.pk,
        metric=goal.metric,
        label=goal.get_metric_display(),
        unit=spec.unit,
        teams=goal.teams,
        period=period,
        target=goal.target,
        actual=actual,
        share=share,
        elapsed=round(elapsed, 4),
        forecast=_forecast(spec.unit, actual, elapsed),
        trend=tuple(trend),
    )


@dataclass(frozen=True, slots=True)
class GoalsBoard:
    """The goals whose period holds `at`: marketing's own, the shared ones, sales' own."""

    at: datetime
    timezone: str
    marketing: tuple[GoalProgress, ...]
    shared: tuple[GoalProgress, ...]
    sales: tuple[GoalProgress, ...]


def goals_current(*, at: datetime, tz: str) -> list[Goal]:
    day = at.astimezone(ZoneInfo(tz)).date()
    current = Q()
    for kind in PeriodKind.values:
        current |= Q(period_kind=kind, period_start=period_start_of(kind, day))
    return list(Goal.objects.filter(current).order_by("period_kind", "metric", "id"))


def goals_board(*, at: datetime, tz: str | None = None, trend_periods: int = 4) -> GoalsBoard:
    """Marketing's and sales' goals side by side, with their progress as of `at`."""
    tz = tz or goals_timezone()
    progress = [
        goal_progress(goal, at=at, tz=tz, trend_periods=trend_periods)
        for goal in goals_current(at=at, tz=tz)
    ]
    return GoalsBoard(
        at=at,
        timezone=tz,
        marketing=tuple(p for p in progress if p.teams == ("marketing",)),
        shared=tuple(p for p in progress if len(p.teams) == 2),
        sales=tuple(p for p in progress if p.teams == ("sales",)),
    )
