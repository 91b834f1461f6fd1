from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.models import SALES_ROLES, User
from alignment.permissions import Action, can
from leads import routing, selectors, services
from leads.announcements import wins_cursor_parse, wins_page
from leads.forms import AssignForm, MergeForm, MoveForm, TouchpointForm
from leads.models import Lead
from leads.scoring.selectors import lead_score_explain


def _detail_context(request, lead: Lead, **forms) -> dict:
    user = request.user
    can_assign = can(user, Action.LEAD_ASSIGN)
    context = {
        "lead": lead,
        "timeline": selectors.lead_timeline(lead=lead),
        "can_assign": can_assign,
        "can_merge": can(user, Action.LEAD_MERGE),
        "explanation": lead_score_explain(lead=lead),
    }
    context.update(forms)
    # the forms not bound by this request, each offering only what this viewer may do
    if "move_form" not in forms:
        context["move_form"] = MoveForm(lead=lead, user=user)
    if "touchpoint_form" not in forms:
        context["touchpoint_form"] = TouchpointForm(lead=lead, user=user)
    if can_assign and "assign_form" not in forms:
        context["assign_form"] = AssignForm()
    if "merge_form" not in forms:
        context["merge_form"] = MergeForm()
    return context


def _lead(pk: int) -> Lead:
    return get_object_or_404(Lead.objects.select_related("owner", "source", "campaign"), pk=pk)


@team_member_required
def lead_detail(request, pk: int):
    lead = _lead(pk)
    return render(request, "leads/detail.html", _detail_context(request, lead))


def _rerender(request, lead: Lead, *, status: int = 400, **forms):
    return render(
        request, "leads/detail.html", _detail_context(request, lead, **forms), status=status
    )


def _lead_action(request, pk: int, *, form_name: str, make_form, act, check=None):
    """Bind the form, call the service; a refusal becomes a form error on the re-rendered page.
    `check(form)` may answer first with a page of its own (a warning to confirm)."""
    lead = _lead(pk)
    form = make_form(lead)
    if form.is_valid():
        answer = check(lead, form) if check else None
        if answer is not None:
            return answer
        try:
            message = act(lead, form.cleaned_data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, message)
            return redirect("leads:detail", pk=lead.pk)
    return _rerender(request, lead, **{form_name: form})


@team_member_required
@require_POST
def lead_move(request, pk: int):
    def act(lead: Lead, data: dict) -> str:
        services.lead_move(
            lead=lead,
            to=data["to"],
            by=request.user,
            reason=data["reason"],
            note=data["note"],
            deal_value=data["deal_value"],
        )
        return f"{lead.display_name} is now {lead.get_stage_display()}."

    return _lead_action(
        request,
        pk,
        form_name="move_form",
        make_form=lambda lead: MoveForm(request.POST, lead=lead, user=request.user),
        act=act,
    )


@team_member_required
@require_POST
def lead_touchpoint(request, pk: int):
    def act(lead: Lead, data: dict) -> str:
        services.touchpoint_record(
            lead=lead,
            kind=data["kind"],
            occurred_at=data["occurred_at"],
            metadata={"note": data["note"]} if data["note"] else {},
            by=request.user,
        )
        return "Touchpoint logged."

    return _lead_action(
        request,
        pk,
        form_name="touchpoint_form",
        make_form=lambda lead: TouchpointForm(request.POST, lead=lead, user=request.user),
        act=act,
    )


@team_member_required
@require_POST
def lead_assign(request, pk: int):
    def check(lead: Lead, form: AssignForm):
        # an away or full rep: the page asks once more, with a "Reassign anyway" button
        warning = form.warning() if can(request.user, Action.LEAD_ASSIGN) else ""
        if warning:
            return _rerender(request, lead, status=200, assign_form=form, assign_warning=warning)
        return None

    def act(lead: Lead, data: dict) -> str:
        # lead_assign notifies the new owner
        routing.lead_assign(lead=lead, rep=data["rep"], by=request.user, note=data["note"])
        rep = data["rep"]
        return f"Assigned to {rep}." + (" They have been notified." if rep != request.user else "")

    return _lead_action(
        request,
        pk,
        form_name="assign_form",
        make_form=lambda lead: AssignForm(request.POST),
        act=act,
        check=check,
    )


@team_member_required
@require_POST
def lead_merge(request, pk: int):
    def act(lead: Lead, data: dict) -> str:
        services.lead_merge(survivor=lead, duplicate=data["duplicate"], by=request.user)
        return "Duplicate merged into this lead."

    return _lead_action(
        request,
        pk,
        form_name="merge_form",
        make_form=lambda lead: MergeForm(request.POST),
        act=act,
    )


@team_member_required
def sales_feedback(request):
    # the feedback table lives on the KPI page now, next to the other MQL figures
    return redirect(reverse("kpis:page") + "#feedback", permanent=True)


class WinsFilterForm(forms.Form):
    period = forms.ChoiceField(
        choices=[("all", "All time"), ("month", "This month"), ("90d", "Last 90 days")],
        required=False,
    )
    owner = forms.ModelChoiceField(
        queryset=User.objects.filter(role__in=SALES_ROLES).order_by("username"),
        required=False,
        empty_label="All owners",
    )

    def since(self, now: datetime) -> datetime | None:
        """The start of the chosen period, in the viewer's time zone (the middleware's)."""
        period = self.cleaned_data.get("period") or "all"
        if period == "month":
            local = timezone.localtime(now)
            return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if period == "90d":
            return now - timedelta(days=90)
        return None


@team_member_required
def announcements(request):
    form = WinsFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "leads/announcements.html", {"form": form, "wins": []}, status=400)
    owner = form.cleaned_data["owner"]
    before = request.GET.get("before", "")
    older_than = wins_cursor_parse(before) if before else None
    page = wins_page(
        since=form.since(timezone.now()),
        owner_id=owner.pk if owner else None,
        older_than=older_than,
    )
    params = request.GET.copy()
    params.pop("before", None)
    filters = params.urlencode()
    older = None
    if page.older:
        params["before"] = page.older
        older = params.urlencode()
    context = {
        "form": form,
        "wins": page.wins,
        "older": older,
        "newest": filters if older_than else None,
        "filtered": bool(owner) or (form.cleaned_data["period"] or "all") != "all",
    }
    return render(request, "leads/announcements.html", context)
