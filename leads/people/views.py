"""Pages of People and routing: thin views over leads.routing's services and this package's reads."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.models import SALES_ROLES, User
from alignment.permissions import Action, can
from leads import routing
from leads.models import AssignmentRule
from leads.people.forms import (
    ConditionFormSet,
    PoolForm,
    RepProfileForm,
    RuleForm,
    TesterForm,
    condition_initial,
    conditions_of,
)
from leads.people.selectors import agreement_calendar, reps_overview, rules_overview, sales_people

NOT_ALLOWED = (
    "People and routing is for sales managers and admins. "
    "A sales rep sets their own availability under “My availability”."
)


def _require_manager(request) -> None:
    if not can(request.user, Action.ROUTING_MANAGE):
        raise PermissionDenied(NOT_ALLOWED)


def _sales_person(pk: int) -> User:
    return get_object_or_404(User, pk=pk, is_active=True, role__in=SALES_ROLES)


@team_member_required
def people_page(request):
    _require_manager(request)
    now = timezone.now()
    calendar = agreement_calendar()
    tester = TesterForm(request.GET if "test" in request.GET else None)
    preview = None
    tested_lead = None
    if tester.is_bound and tester.is_valid():
        tested_lead = tester.cleaned_data["found"] or tester.cleaned_data["imagined"]
        preview = routing.routing_preview(lead=tested_lead)
    rules = rules_overview()
    for rule in rules:
        rule.words = routing.rule_words(rule)
    return render(
        request,
        "leads/people/page.html",
        {
            "rows": reps_overview(now=now, calendar=calendar),
            "calendar": calendar,
            "rules": rules,
            "tester": tester,
            "preview": preview,
            "tested_lead": tested_lead,
        },
    )


@team_member_required
def rep_edit(request, pk: int):
    _require_manager(request)
    rep = _sales_person(pk)
    initial = {f: getattr(rep, f) for f in ("available", "capacity", "working_timezone")}
    form = RepProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            changed = routing.rep_profile_update(rep=rep, by=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request, f"Saved {rep}'s profile." if changed else f"Nothing changed for {rep}."
            )
            return redirect("people:page")
    status = 400 if form.is_bound else 200
    return render(request, "leads/people/rep_form.html", {"rep": rep, "form": form}, status=status)


@team_member_required
@require_POST
def rep_availability(request, pk: int):
    """Set a rep away or available: a manager for anyone, a rep for themselves."""
    rep = _sales_person(pk)
    available = request.POST.get("available") == "1"
    try:
        routing.rep_profile_update(rep=rep, by=request.user, available=available)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        who = "You are" if rep.pk == request.user.pk else f"{rep} is"
        messages.success(request, f"{who} now {'available' if available else 'away'}.")
    if request.POST.get("next") == "me" or not can(request.user, Action.ROUTING_MANAGE):
        return redirect("people:me")
    return redirect("people:page")


@team_member_required
def me(request):
    """A sales rep's own routing profile, and the switch between available and away."""
    user = request.user
    if not user.is_sales:
        raise PermissionDenied(
            "“My availability” is for sales reps and sales managers, who take routed leads."
        )
    now = timezone.now()
    row = next(r for r in reps_overview(now=now, calendar=agreement_calendar()) if r.rep == user)
    return render(request, "leads/people/me.html", {"row": row})


def _rule_page(request, rule: AssignmentRule | None):
    _require_manager(request)
    people = sales_people()
    if rule is None:
        members: dict[int, int] = {}
        rule_initial = {"active": True}
        conditions_initial: list[dict] = []
    else:
        members = dict(rule.members.values_list("rep_id", "weight"))
        rule_initial = {"name": rule.name, "active": rule.active}
        stored = rule.conditions if isinstance(rule.conditions, list) else []
        conditions_initial = [condition_initial(c) for c in stored if isinstance(c, dict)]
    data = request.POST if request.method == "POST" else None
    form = RuleForm(data, initial=rule_initial)
    formset = ConditionFormSet(data, initial=conditions_initial, prefix="cond")
    pool = PoolForm(data, people=people, members=members, prefix="pool")
    if data is not None:
        valid = form.is_valid() & formset.is_valid() & pool.is_valid()
        if valid:
            try:
                saved = routing.routing_rule_save(
                    by=request.user,
                    rule=rule,
                    name=form.cleaned_data["name"],
                    active=form.cleaned_data["active"],
                    conditions=conditions_of(formset),
                    members=pool.members(),
                )
            except DomainError as exc:
                if exc.field in form.fields:
                    form.add_error(exc.field, exc.message)
                elif exc.field == "members":
                    pool.add_error(None, exc.message)
                else:
                    form.add_error(None, exc.message)
            else:
                messages.success(request, f"Saved the rule “{saved.name}”.")
                return redirect("people:page")
    context = {"rule": rule, "form": form, "formset": formset, "pool": pool}
    status = 400 if data is not None else 200
    return render(request, "leads/people/rule_form.html", context, status=status)


@team_member_required
def rule_new(request):
    return _rule_page(request, None)


@team_member_required
def rule_edit(request, pk: int):
    return _rule_page(request, get_object_or_404(AssignmentRule, pk=pk))


def _rule_action(request, pk: int, act) -> object:
    _require_manager(request)
    rule = get_object_or_404(AssignmentRule, pk=pk)
    try:
        message = act(rule)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, message)
    return redirect("people:page")


@team_member_required
@require_POST
def rule_delete(request, pk: int):
    def act(rule: AssignmentRule) -> str:
        routing.routing_rule_delete(rule=rule, by=request.user)
        return f"Deleted the rule “{rule.name}”."

    return _rule_action(request, pk, act)


@team_member_required
@require_POST
def rule_move(request, pk: int):
    up = request.POST.get("direction") == "up"

    def act(rule: AssignmentRule) -> str:
        routing.routing_rule_move(rule=rule, by=request.user, up=up)
        return f"Moved “{rule.name}” {'up' if up else 'down'}."

    return _rule_action(request, pk, act)


@team_member_required
@require_POST
def rule_activate(request, pk: int):
    active = request.POST.get("active") == "1"

    def act(rule: AssignmentRule) -> str:
        routing.routing_rule_activate(rule=rule, by=request.user, active=active)
        return f"“{rule.name}” is now {'active' if active else 'inactive'}."

    return _rule_action(request, pk, act)
