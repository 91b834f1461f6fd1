"""The scoring models page: every version, its rules and diff, and the two managers' sign-off."""

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
from leads.scoring import selectors, services
from leads.scoring.forms import DraftForm
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.tasks import scoring_preview_queue

APPROVERS_ONLY = (
    "You may not approve scoring model versions: a marketing manager and a sales manager sign "
    "them off."
)


class DecisionForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


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


@team_member_required
def scoring_models(request):
    versions = list(ScoringModel.objects.prefetch_related("approvals__by").order_by("-id")[:50])
    return render(
        request,
        "leads/scoring/models.html",
        {
            "active": next((v for v in versions if v.status == ModelStatus.ACTIVE), None),
            "pending": [v for v in versions if v.status == ModelStatus.PROPOSED],
            "drafts": [v for v in versions if v.status == ModelStatus.DRAFT],
            "retired": [v for v in versions if v.status == ModelStatus.RETIRED][:10],
            "can_copy": can(request.user, Action.SCORING_PROPOSE),
        },
    )


def _model_context(request, model: ScoringModel, form: DecisionForm | None = None) -> dict:
    user = request.user
    diff, diff_base = selectors.scoring_model_diff(model=model)
    preview, preview_stale = selectors.scoring_model_preview(model=model)
    may_edit = can(user, Action.SCORING_PROPOSE)
    pending = model.status in (ModelStatus.DRAFT, ModelStatus.PROPOSED)
    active = ScoringModel.objects.filter(status=ModelStatus.ACTIVE).first() if pending else None
    return {
        "model": model,
        "diff": diff,
        "diff_base": diff_base,
        "can_copy": may_edit,
        "can_edit": may_edit and model.status == ModelStatus.DRAFT,
        "approvals": model.approvals.select_related("by"),
        "events": model.events.select_related("by").order_by("-at")[:30],
        "form": form or DecisionForm(),
        "can_propose": model.status == ModelStatus.DRAFT and can(user, Action.SCORING_PROPOSE),
        "can_decide": model.status == ModelStatus.PROPOSED
        and can(user, Action.SCORING_APPROVE)
        and not model.approvals.filter(by=user).exists(),
        "can_withdraw": model.status == ModelStatus.PROPOSED and can(user, Action.SCORING_PROPOSE),
        "pending": pending,
        "verdict": selectors.scoring_model_verdict(model=model, active=active) if pending else None,
        "preview": preview,
        "preview_stale": preview_stale,
    }


@team_member_required
def scoring_model(request, pk: int):
    model = get_object_or_404(ScoringModel, pk=pk)
    return render(request, "leads/scoring/model.html", _model_context(request, model))


ACTIONS = {
    "propose": (services.scoring_model_propose, "proposed for sign-off"),
    "send-back": (services.scoring_model_send_back, "sent back to draft"),
    "withdraw": (services.scoring_model_withdraw, "withdrawn to draft"),
}


@team_member_required
def scoring_model_decide(request, pk: int, action: str):
    if action == "approve":
        return scoring_model_approve(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    model = get_object_or_404(ScoringModel, pk=pk)
    if action not in ACTIONS:
        return redirect("leads:scoring_model", pk=pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    service, done = ACTIONS[action]
    try:
        service(model=model, by=request.user, note=form.cleaned_data.get("note", ""))
    except DomainError as exc:
        form.add_error(None, exc.message)
        context = _model_context(request, model, form)
        return render(request, "leads/scoring/model.html", context, status=400)
    model.refresh_from_db()
    if model.status == ModelStatus.PROPOSED:
        scoring_preview_queue(model.pk)
    messages.success(request, f"{model} {done}; it is now {model.get_status_display()}.")
    return redirect("leads:scoring_model", pk=pk)


def scoring_model_approve(request, pk: int):
    """The approval, behind a confirmation: GET shows what the approval changes (rules, grades,
    new MQLs, the verdict's warning); POST approves only with "I have read what changes" ticked
    and only the version as it was shown."""
    if not can(request.user, Action.SCORING_APPROVE):
        raise PermissionDenied(APPROVERS_ONLY)
    model = get_object_or_404(ScoringModel, pk=pk)
    if request.method == "POST":
        form = ApproveForm(request.POST)
        if form.is_valid():
            try:
                services.scoring_model_approve(
                    model=model,
                    by=request.user,
                    note=form.cleaned_data["note"],
                    read_at=form.cleaned_data["read_at"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                model.refresh_from_db()
                if model.status == ModelStatus.PROPOSED:
                    scoring_preview_queue(model.pk)
                messages.success(
                    request, f"{model} approved; it is now {model.get_status_display()}."
                )
                return redirect("leads:scoring_model", pk=pk)
        model.refresh_from_db()
        return _approve_page(request, model, form, status=400)
    if model.status != ModelStatus.PROPOSED:
        messages.error(request, f"{model} is not proposed; only a proposal can be approved.")
        return redirect("leads:scoring_model", pk=pk)
    if model.approvals.filter(by=request.user).exists():
        messages.error(request, f"You have already approved {model}.")
        return redirect("leads:scoring_model", pk=pk)
    return _approve_page(request, model, ApproveForm())


def _approve_page(request, model: ScoringModel, form: ApproveForm, status: int = 200):
    context = {
        **selectors.scoring_model_signoff(model=model, by=request.user),
        "form": form,
        # the version whose changes this page shows; the approval is refused if it changes
        "read_at": model.updated_at.isoformat(),
    }
    return render(request, "leads/scoring/approve.html", context, status=status)


@team_member_required
@require_POST
def scoring_model_preview(request, pk: int):
    """Count again how many leads this pending version would make MQLs."""
    model = get_object_or_404(
        ScoringModel, pk=pk, status__in=(ModelStatus.DRAFT, ModelStatus.PROPOSED)
    )
    if scoring_preview_queue(model.pk):
        messages.success(request, "Counting the leads this version would qualify; reload soon.")
    else:
        messages.error(request, "The task queue is not reachable right now; try again later.")
    if request.POST.get("next") == "approve":
        return redirect("leads:scoring_model_decide", pk=pk, action="approve")
    return redirect("leads:scoring_model", pk=pk)


def _require_propose(request) -> None:
    if not can(request.user, Action.SCORING_PROPOSE):
        raise PermissionDenied("Only marketing may copy, edit or discard a scoring model version.")


def _refused(request, model: ScoringModel, exc: DomainError):
    form = DecisionForm({})
    form.is_valid()
    form.add_error(None, exc.message)
    context = _model_context(request, model, form)
    return render(request, "leads/scoring/model.html", context, status=400)


@team_member_required
@require_POST
def scoring_model_copy(request, pk: int):
    """Start a draft from any version: the active one, a proposal, or a retired one brought back."""
    _require_propose(request)
    model = get_object_or_404(ScoringModel, pk=pk)
    try:
        draft = services.scoring_model_copy(model=model, by=request.user)
    except DomainError as exc:
        return _refused(request, model, exc)
    messages.success(request, f"{draft} is a new draft copied from {model}; edit it below.")
    return redirect("leads:scoring_model_edit", pk=draft.pk)


@team_member_required
def scoring_model_edit(request, pk: int):
    _require_propose(request)
    model = get_object_or_404(ScoringModel, pk=pk)
    if model.status != ModelStatus.DRAFT and request.method != "POST":
        messages.error(request, f"{model} is not a draft; copy it to a draft to change it.")
        return redirect("leads:scoring_model", pk=pk)
    if request.method == "POST":
        form = DraftForm(request.POST, model=model)
    else:
        form = DraftForm.for_model(model)
    if request.method == "POST" and form.is_valid():
        try:
            services.scoring_model_update(
                model=model,
                by=request.user,
                spec=form.spec(),
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, f"{model} saved.")
            return redirect("leads:scoring_model", pk=pk)
    status = 400 if form.is_bound else 200
    return render(request, "leads/scoring/edit.html", {"model": model, "form": form}, status=status)


@team_member_required
@require_POST
def scoring_model_discard(request, pk: int):
    _require_propose(request)
    model = get_object_or_404(ScoringModel, pk=pk)
    try:
        services.scoring_model_discard(model=model, by=request.user)
    except DomainError as exc:
        return _refused(request, model, exc)
    messages.success(request, f"Draft {model} discarded.")
    return redirect("leads:scoring")
