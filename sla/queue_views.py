"""The sales queue (/sla/queue/): a rep's MQLs with their SLA countdowns and the one-click moves
(accept, reject with a reason, log a call, email or meeting), and the team view of a sales
manager. Every move calls the lead services; a refusal comes back as a message or a form error
on the queue, and nothing is changed."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.models import Role
from alignment.permissions import Action, can
from leads import lifecycle, services
from leads.models import Lead, Reason, ReasonKind, TouchpointKind
from sla import queue
from sla.selectors import agreement_active, calendar_words

# the touches a rep logs from the queue: the ones that meet the response clock
QUEUE_TOUCHES = {
    TouchpointKind.CALL: "call",
    TouchpointKind.SALES_EMAIL: "email",
    TouchpointKind.MEETING: "meeting",
}
TEAM_ROLES = frozenset({Role.SALES_MANAGER, Role.ADMIN, Role.MARKETER, Role.MARKETING_MANAGER})


class RejectForm(forms.Form):
    reason = forms.ModelChoiceField(
        queryset=Reason.objects.filter(kind=ReasonKind.REJECT, active=True),
        empty_label="Choose a reason…",
        error_messages={"required": "Choose a reason for rejecting this MQL."},
    )
    # a reason that needs a note is the service's rule: its refusal lands on this field
    note = forms.CharField(required=False, max_length=2000)


def _context(request, *, failed: dict | None = None) -> dict:
    user = request.user
    now = timezone.now()
    role = user.effective_role
    agreement = agreement_active()
    context = {
        "now": now,
        "can_decide": can(user, Action.LEAD_DECIDE),
        "can_touch": can(user, Action.TOUCHPOINT_SALES),
        "can_assign": can(user, Action.LEAD_ASSIGN),
        "touches": QUEUE_TOUCHES.items(),
        "calendar_text": calendar_words(agreement.calendar) if agreement else "",
        "failed": failed or {},
        "mine": [],
        "team": None,
    }
    if user.is_sales or role == Role.ADMIN:
        context["mine"] = queue.queue_for_rep(rep=user, now=now)
    if role in TEAM_ROLES:
        context["team"] = queue.team_queue(now=now)
    if context["can_decide"]:
        context["reasons"] = queue.reject_reasons()
    return context


@team_member_required
def queue_page(request):
    return render(request, "sla/queue.html", _context(request))


def _back(request):
    return redirect("sla_queue:queue")


@team_member_required
@require_POST
def queue_accept(request, pk: int):
    lead = get_object_or_404(Lead, pk=pk)
    try:
        lifecycle.lead_accept(lead=lead, by=request.user)
    except DomainError as error:
        messages.error(request, f"{lead.display_name} was not accepted: {error.message}")
    else:
        messages.success(request, f"{lead.display_name} accepted: it is now a sales-accepted lead.")
    return _back(request)


@team_member_required
@require_POST
def queue_reject(request, pk: int):
    lead = get_object_or_404(Lead, pk=pk)
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            lifecycle.lead_reject(
                lead=lead,
                by=request.user,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(
                request,
                f"{lead.display_name} rejected ({form.cleaned_data['reason'].label}).",
            )
            return _back(request)
    # the queue again with the row's reject form open, the error in place, nothing changed
    errors = " ".join(str(e) for errs in form.errors.values() for e in errs)
    messages.error(request, f"{lead.display_name} was not rejected: {errors}")
    failed = {"lead_id": lead.pk, "form": form}
    return render(request, "sla/queue.html", _context(request, failed=failed), status=400)


@team_member_required
@require_POST
def queue_touch(request, pk: int):
    lead = get_object_or_404(Lead, pk=pk)
    kind = request.POST.get("kind", "")
    if kind not in QUEUE_TOUCHES:
        messages.error(request, "Choose a call, an email or a meeting to log.")
        return _back(request)
    try:
        services.touchpoint_record(lead=lead, kind=kind, by=request.user)
    except DomainError as error:
        messages.error(request, f"Nothing was logged on {lead.display_name}: {error.message}")
    else:
        messages.success(request, f"{TouchpointKind(kind).label} logged on {lead.display_name}.")
    return _back(request)
