"""The scoring models page: every version, its rules and diff, and the two managers' sign-off."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from leads.scoring import services
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.tasks import scoring_preview


class DecisionForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


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
        },
    )


def _model_context(request, model: ScoringModel, form: DecisionForm | None = None) -> dict:
    user = request.user
    return {
        "model": model,
        "approvals": model.approvals.select_related("by"),
        "events": model.events.select_related("by").order_by("-at")[:30],
        "form": form or DecisionForm(),
        "can_propose": model.status == ModelStatus.DRAFT and can(user, Action.SCORING_PROPOSE),
        "can_decide": model.status == ModelStatus.PROPOSED
        and can(user, Action.SCORING_APPROVE)
        and not model.approvals.filter(by=user).exists(),
        "can_withdraw": model.status == ModelStatus.PROPOSED and can(user, Action.SCORING_PROPOSE),
        "pending": model.status in (ModelStatus.DRAFT, ModelStatus.PROPOSED),
        "preview": model.report.get("activation_preview"),
    }


@team_member_required
def scoring_model(request, pk: int):
    model = get_object_or_404(ScoringModel, pk=pk)
    return render(request, "leads/scoring/model.html", _model_context(request, model))


ACTIONS = {
    "propose": (services.scoring_model_propose, "proposed for sign-off"),
    "approve": (services.scoring_model_approve, "approved"),
    "send-back": (services.scoring_model_send_back, "sent back to draft"),
    "withdraw": (services.scoring_model_withdraw, "withdrawn to draft"),
}


@team_member_required
@require_POST
def scoring_model_decide(request, pk: int, action: str):
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
        _queue_preview(model)
    messages.success(request, f"{model} {done}; it is now {model.get_status_display()}.")
    return redirect("leads:scoring_model", pk=pk)


def _queue_preview(model: ScoringModel) -> bool:
    try:
        scoring_preview.delay(model.pk)
    except Exception:  # the broker is down: the page says the count is not there yet
        return False
    return True


@team_member_required
@require_POST
def scoring_model_preview(request, pk: int):
    """Count again how many leads this pending version would make MQLs."""
    model = get_object_or_404(
        ScoringModel, pk=pk, status__in=(ModelStatus.DRAFT, ModelStatus.PROPOSED)
    )
    if _queue_preview(model):
        messages.success(request, "Counting the leads this version would qualify; reload soon.")
    else:
        messages.error(request, "The task queue is not reachable right now; try again later.")
    return redirect("leads:scoring_model", pk=pk)
