"""The agreement pages: the one in force in words, its history, one version with its changes,
the draft form, and the two managers' sign-off (approval behind a confirmation)."""

from datetime import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from alignment.signoff import VersionStatus
from sla import agreements, selectors
from sla.forms import AgreementForm, DecisionForm
from sla.models import Agreement

MANAGERS_ONLY = (
    "Only a marketing manager or a sales manager may draft, propose or approve the agreement: it "
    "binds both teams."
)


class ApproveForm(forms.Form):
    """An approval, given only after reading what it changes (the confirmation page)."""

    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(
        label="I have read what changes",
        error_messages={
            "required": "Tick “I have read what changes” to approve; nothing was approved."
        },
    )
    # the version's updated_at when the page was shown: a version changed since is refused
    read_at = forms.CharField(widget=forms.HiddenInput)

    def clean_read_at(self) -> datetime:
        try:
            return datetime.fromisoformat(self.cleaned_data["read_at"])
        except ValueError:
            raise forms.ValidationError(
                "Open the approval page again; nothing was approved."
            ) from None


def _require_manager(request) -> None:
    if not can(request.user, Action.AGREEMENT_SIGN):
        raise PermissionDenied(MANAGERS_ONLY)


def _pending() -> list[Agreement]:
    return list(
        selectors.agreement_history().filter(
            status__in=(VersionStatus.DRAFT, VersionStatus.PROPOSED)
        )
    )


@team_member_required
def agreement(request):
    """The agreement in force, as a manager reads it in one minute."""
    active = selectors.agreement_active()
    context = {
        "agreement": active,
        "summary": selectors.agreement_summary(active) if active else None,
        "approvals": list(active.approvals.select_related("by")) if active else [],
        "pending": _pending(),
        "can_draft": can(request.user, Action.AGREEMENT_SIGN),
    }
    return render(request, "sla/agreement.html", context)


@team_member_required
def agreement_history(request):
    versions = list(selectors.agreement_history().order_by("-version"))
    return render(
        request,
        "sla/agreement_history.html",
        {"versions": versions, "can_draft": can(request.user, Action.AGREEMENT_SIGN)},
    )


def _version_context(request, version: Agreement, form: DecisionForm | None = None) -> dict:
    user = request.user
    manager = can(user, Action.AGREEMENT_SIGN)
    changes, base = selectors.agreement_changes(agreement=version)
    approvals = list(version.approvals.select_related("by"))
    proposed = version.status == VersionStatus.PROPOSED
    return {
        "agreement": version,
        "summary": selectors.agreement_summary(version),
        "changes": changes,
        "diff_base": base,
        "approvals": approvals,
        "events": _events(version),
        "form": form or DecisionForm(),
        "can_draft": manager,
        "can_edit": manager and version.status == VersionStatus.DRAFT,
        "can_propose": manager and version.status == VersionStatus.DRAFT,
        "can_withdraw": manager and proposed,
        "can_decide": manager and proposed and not any(a.by_id == user.pk for a in approvals),
    }


def _events(version: Agreement) -> list:
    events = list(selectors.agreement_events(agreement=version).order_by("-at", "-id")[:30])
    for event in events:
        changed = (event.details or {}).get("changed") or []
        event.changed_labels = [selectors.FIELD_LABELS.get(n, n).lower() for n in changed]
    return events


@team_member_required
def agreement_version(request, pk: int):
    version = get_object_or_404(selectors.agreement_history(), pk=pk)
    return render(request, "sla/agreement_version.html", _version_context(request, version))


@team_member_required
@require_POST
def agreement_new(request):
    """Start a draft: a copy of the agreement in force, or of the version named by `based_on`."""
    _require_manager(request)
    based_on = None
    if request.POST.get("based_on"):
        based_on = get_object_or_404(Agreement, pk=request.POST["based_on"])
    try:
        draft = agreements.agreement_create_draft(by=request.user, based_on=based_on)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("sla:agreement")
    messages.success(request, f"{draft} is a new draft; change what the teams should agree to.")
    return redirect("sla:agreement_edit", pk=draft.pk)


@team_member_required
def agreement_edit(request, pk: int):
    _require_manager(request)
    version = get_object_or_404(Agreement, pk=pk)
    if version.status != VersionStatus.DRAFT and request.method != "POST":
        messages.error(request, f"{version} is not a draft; start a new draft to change it.")
        return redirect("sla:agreement_version", pk=pk)
    if request.method == "POST":
        form = AgreementForm(request.POST, agreement=version)
        if form.is_valid():
            try:
                agreements.agreement_update(agreement=version, by=request.user, **form.changes())
            except agreements.AgreementError as exc:
                form.add_service_errors(exc.errors, exc.message)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"{version} saved.")
                return redirect("sla:agreement_version", pk=pk)
    else:
        form = AgreementForm.for_agreement(version)
    status = 400 if form.is_bound else 200
    return render(
        request, "sla/agreement_edit.html", {"agreement": version, "form": form}, status=status
    )


ACTIONS = {
    "propose": (agreements.agreement_propose, "proposed for sign-off"),
    "withdraw": (agreements.agreement_withdraw, "withdrawn to draft"),
    "send-back": (agreements.agreement_send_back, "sent back to draft"),
}


@team_member_required
def agreement_decide(request, pk: int, action: str):
    if action == "approve":
        return agreement_approve(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    version = get_object_or_404(Agreement, pk=pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    try:
        if action == "discard":
            agreements.agreement_discard(agreement=version, by=request.user)
            messages.success(request, f"Draft {version} discarded.")
            return redirect("sla:agreement")
        if action not in ACTIONS:
            return redirect("sla:agreement_version", pk=pk)
        service, done = ACTIONS[action]
        service(agreement=version, by=request.user, note=form.cleaned_data.get("note", ""))
    except DomainError as exc:
        form.add_error(None, exc.message)
        version = get_object_or_404(selectors.agreement_history(), pk=pk)
        context = _version_context(request, version, form)
        return render(request, "sla/agreement_version.html", context, status=400)
    version.refresh_from_db()
    messages.success(request, f"{version} {done}; it is now {version.get_status_display()}.")
    return redirect("sla:agreement_version", pk=pk)


def agreement_approve(request, pk: int):
    """The approval, behind a confirmation: GET shows what the approval changes; POST approves
    only with "I have read what changes" ticked and only the version as it was shown."""
    _require_manager(request)
    version = get_object_or_404(Agreement, pk=pk)
    if request.method == "POST":
        form = ApproveForm(request.POST)
        if form.is_valid():
            try:
                agreements.agreement_approve(
                    agreement=version,
                    by=request.user,
                    note=form.cleaned_data["note"],
                    read_at=form.cleaned_data["read_at"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                version.refresh_from_db()
                if version.status == VersionStatus.ACTIVE:
                    messages.success(request, f"{version} approved by both teams; it is in force.")
                    return redirect("sla:agreement")
                messages.success(
                    request, f"{version} approved; it now needs the other side's approval."
                )
                return redirect("sla:agreement_version", pk=pk)
        version.refresh_from_db()
        return _approve_page(request, version, form, status=400)
    if version.status != VersionStatus.PROPOSED:
        messages.error(request, f"{version} is not proposed; only a proposal can be approved.")
        return redirect("sla:agreement_version", pk=pk)
    if version.approvals.filter(by=request.user).exists():
        messages.error(request, f"You have already approved {version}.")
        return redirect("sla:agreement_version", pk=pk)
    return _approve_page(request, version, ApproveForm())


def _approve_page(request, version: Agreement, form: ApproveForm, status: int = 200):
    context = {
        **selectors.agreement_signoff(agreement=version, by=request.user),
        "form": form,
        # the version whose changes this page shows; the approval is refused if it changes
        "read_at": version.updated_at.isoformat(),
    }
    return render(request, "sla/agreement_approve.html", context, status=status)
