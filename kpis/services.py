"""Setting the shared goals: the only way a Goal is written (pages, the admin and the API call
these). A marketing manager sets goals marketing owns (alone or with sales), a sales manager
those sales owns, an admin any; each refusal says what to do instead."""

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.permissions import Action, require
from kpis.models import Goal, Metric, PeriodKind
from kpis.selectors.goals import METRICS, PERCENT, period_start_of

GOAL_FIELDS = ("metric", "period_kind", "period_start", "target", "marketing", "sales", "note")
_FIRST_DAY = {
    PeriodKind.WEEK: "a Monday",
    PeriodKind.MONTH: "the 1st of a month",
    PeriodKind.QUARTER: "the 1st of January, April, July or October",
}


def _target(value: Any, metric: str) -> Decimal:
    try:
        target = Decimal(str(value))
    except InvalidOperation:
        raise DomainError("The target must be a number.", field="target") from None
    if not target.is_finite() or target <= 0:
        raise DomainError("The target must be greater than zero.", field="target")
    if METRICS[metric].unit == PERCENT and target > 100:
        raise DomainError(
            f"{Metric(metric).label} is a percentage: the target is at most 100.", field="target"
        )
    if target.as_tuple().exponent < -2 or target >= Decimal("1e12"):
        raise DomainError("The target has at most two decimals and twelve digits.", field="target")
    return target


def _check(goal: Goal, by: User) -> None:
    if goal.metric not in Metric.values:
        raise DomainError("Choose one of the listed figures for the goal.", field="metric")
    if goal.period_kind not in PeriodKind.values:
        raise DomainError("A goal runs for a week, a month or a quarter.", field="period_kind")
    if not isinstance(goal.period_start, date):
        raise DomainError("Give the period's first day as a date.", field="period_start")
    if period_start_of(goal.period_kind, goal.period_start) != goal.period_start:
        kind = PeriodKind(goal.period_kind).label.lower()
        raise DomainError(
            f"A {kind}'s goal starts on {_FIRST_DAY[goal.period_kind]}; "
            f"{goal.period_start:%A %d %B %Y} is not one.",
            field="period_start",
        )
    goal.target = _target(goal.target, goal.metric)
    if not (goal.marketing or goal.sales):
        raise DomainError("A goal belongs to marketing, to sales or to both.", field="marketing")
    role = by.effective_role
    if role == Role.MARKETING_MANAGER and not goal.marketing:
        raise DomainError(
            "A marketing manager sets the goals marketing owns (alone or with sales); "
            "ask a sales manager to set a goal for sales alone.",
            field="marketing",
        )
    if role == Role.SALES_MANAGER and not goal.sales:
        raise DomainError(
            "A sales manager sets the goals sales owns (alone or with marketing); "
            "ask a marketing manager to set a goal for marketing alone.",
            field="sales",
        )
    taken = Goal.objects.filter(
        metric=goal.metric, period_kind=goal.period_kind, period_start=goal.period_start
    ).exclude(pk=goal.pk)
    if taken.exists():
        raise DomainError(
            f"There is already a goal for {Metric(goal.metric).label} in the "
            f"{PeriodKind(goal.period_kind).label.lower()} from {goal.period_start:%d %B %Y}; "
            "change that one instead.",
            field="metric",
        )


@transaction.atomic
def goal_create(
    *,
    by: User,
    metric: str,
    period_kind: str,
    period_start: date,
    target: Any,
    marketing: bool = False,
    sales: bool = False,
    note: str = "",
) -> Goal:
    require(by, Action.GOAL_MANAGE)
    goal = Goal(
        metric=metric,
        period_kind=period_kind,
        period_start=period_start,
        target=target,
        marketing=bool(marketing),
        sales=bool(sales),
        note=note.strip(),
        created_by=by,
    )
    _check(goal, by)
    goal.save()
    return goal


@transaction.atomic
def goal_update(*, goal: Goal, by: User, **changes: Any) -> Goal:
    """Change any of GOAL_FIELDS; a manager may change only a goal their team owns, and it must
    stay owned by their team."""
    require(by, Action.GOAL_MANAGE)
    unknown = set(changes) - set(GOAL_FIELDS)
    if unknown:
        raise DomainError(f"A goal has no field {', '.join(sorted(unknown))}.")
    locked = Goal.objects.select_for_update().get(pk=goal.pk)
    _check(locked, by)  # the goal as it stands must be theirs to change
    for field, value in changes.items():
        setattr(locked, field, value.strip() if field == "note" else value)
    _check(locked, by)
    locked.save()
    return locked


@transaction.atomic
def goal_delete(*, goal: Goal, by: User) -> None:
    require(by, Action.GOAL_MANAGE)
    locked = Goal.objects.select_for_update().get(pk=goal.pk)
    _check(locked, by)
    locked.delete()
