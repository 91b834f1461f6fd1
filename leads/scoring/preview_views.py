"""The draft editor's live preview: the typed (unsaved) draft on the holdout leads."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from leads.scoring.forms import DraftForm
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.rules import validate_spec
from leads.scoring.tuning.preview import holdout_of, scoring_spec_preview


@team_member_required
@require_POST
def scoring_model_edit_preview(request, pk: int):
    """Validate the editor's form as saving would, and re-render the editor with what the draft
    would do on the holdout; nothing is saved, the typed values stay in the boxes."""
    if not can(request.user, Action.SCORING_PROPOSE):
        raise PermissionDenied("Only marketing may edit a scoring model version.")
    model = get_object_or_404(ScoringModel.objects.select_related("based_on"), pk=pk)
    if model.status != ModelStatus.DRAFT:
        messages.error(request, f"{model} is not a draft; copy it to a draft to change it.")
        return redirect("leads:scoring_model", pk=pk)
    form = DraftForm(request.POST, model=model)
    holdout = holdout_of(model)
    preview, preview_error = None, ""
    if form.is_valid():
        try:
            spec = validate_spec(form.spec())
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            try:
                preview = scoring_spec_preview(
                    spec,
                    outcome=holdout["outcome"],
                    holdout=holdout["holdout"],
                    seed=holdout["seed"],
                    now=timezone.now(),
                )
            except DomainError as exc:
                preview_error = exc.message
    context = {
        "model": model,
        "form": form,
        "previewed": True,
        "preview": preview,
        "preview_error": preview_error,
        "holdout": holdout,
    }
    return render(request, "leads/scoring/edit.html", context, status=400 if form.errors else 200)
