"""Setting the shared goals from a page (/kpis/goals/): a marketing manager, a sales manager and
an admin create, change and delete them through kpis.services; everyone else reads them."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.models import Role
from alignment.permissions import Action, can
from kpis import services
from kpis.forms import GoalForm
from kpis.models import Goal, PeriodKind
from kpis.selectors.goals import METRICS, goal_period, goals_timezone, period_start_of

GOALS_PER_PAGE = 50
READ_ONLY = (
    "Goals are set by a marketing manager, a sales manager or an admin; "
    "your role ({role}) reads them here. Ask one of them to set or change a goal."
)


@dataclass(frozen=True, slots=True)
class GoalRow:
    goal: Goal
    period_label: str
    unit: str
    current: bool


def _read_only_sentence(user) -> str:
    role = Role(user.effective_role).label if user.effective_role else "no role"
    return READ_ONLY.format(role=role)


def _initial(user) -> dict:
    today = timezone.localdate()
    role = user.effective_role
    return {
        "period_kind": PeriodKind.MONTH,
        "period_start": period_start_of(PeriodKind.MONTH, today),
        "marketing": role in (Role.MARKETING_MANAGER, Role.ADMIN),
        "sales": role in (Role.SALES_MANAGER, Role.ADMIN),
    }


def _rows(goals, *, tz: str) -> list[GoalRow]:
    now = timezone.now()
    rows = []
    for goal in goals:
        period = goal_period(goal.period_kind, goal.period_start, tz=tz)
        rows.append(
            GoalRow(
                goal=goal,
                period_label=period.label,
                unit=METRICS[goal.metric].unit if goal.metric in METRICS else "count",
                current=period.start <= now < period.end,
            )
        )
    return rows


def _list_page(request, *, form: GoalForm | None, status: int = 200):
    user = request.user
    may_manage = can(user, Action.GOAL_MANAGE)
    goals = Goal.objects.order_by("-period_start", "period_kind", "metric")
    page = Paginator(goals, GOALS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": _rows(page.object_list, tz=goals_timezone()),
        "may_manage": may_manage,
        "form": form if may_manage else None,
        "read_only": "" if may_manage else _read_only_sentence(user),
    }
    return render(request, "kpis/goals_page.html", context, status=status)


def _refused(request):
    return render(
        request,
        "kpis/goals_refused.html",
        {"read_only": _read_only_sentence(request.user)},
        status=403,
    )


@team_member_required
def goal_list(request):
    """The goals, newest period first; for a manager, the form to set a new one (POST here)."""
    if request.method != "POST":
        return _list_page(request, form=GoalForm(initial=_initial(request.user)))
    if not can(request.user, Action.GOAL_MANAGE):
        return _refused(request)
    form = GoalForm(request.POST)
    if form.is_valid():
        try:
            goal = services.goal_create(by=request.user, **form.cleaned_data)
        except DomainError as error:
            form.add_domain_error(error)
        else:
            messages.success(request, f"Goal set: {goal.get_metric_display()}.")
            return redirect("kpis:goals")
    return _list_page(request, form=form, status=400)


@team_member_required
def goal_edit(request, pk: int):
    goal = get_object_or_404(Goal, pk=pk)
    if not can(request.user, Action.GOAL_MANAGE):
        return _refused(request)
    if request.method == "POST":
        form = GoalForm(request.POST)
        if form.is_valid():
            try:
                services.goal_update(goal=goal, by=request.user, **form.cleaned_data)
            except DomainError as error:
                form.add_domain_error(error)
            else:
                messages.success(request, f"Goal changed: {goal.get_metric_display()}.")
                return redirect("kpis:goals")
        status = 400
    else:
        form = GoalForm(initial={field: getattr(goal, field) for field in services.GOAL_FIELDS})
        status = 200
    return render(request, "kpis/goals_edit.html", {"goal": goal, "form": form}, status=status)


@team_member_required
@require_POST
def goal_delete(request, pk: int):
    goal = get_object_or_404(Goal, pk=pk)
    if not can(request.user, Action.GOAL_MANAGE):
        return _refused(request)
    try:
        services.goal_delete(goal=goal, by=request.user)
    except DomainError as error:
        form = GoalForm(initial={field: getattr(goal, field) for field in services.GOAL_FIELDS})
        context = {"goal": goal, "form": form, "delete_error": error.message}
        return render(request, "kpis/goals_edit.html", context, status=400)
    messages.success(request, f"Goal deleted: {goal.get_metric_display()}.")
    return redirect("kpis:goals")
