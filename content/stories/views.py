"""The story card's form posts here; the lead page shows the card (content.templatetags.
content_stories). A refusal re-renders the form on a small page of its own with a back link."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from content.stories.forms import StoryForm, story_assets
from content.stories.services import CLOSE_STAGES, may_tell_story, story_record
from content.templatetags.content_stories import StoryCard, story_of
from leads.models import Lead, Stage, StageChange

MAX_ID = 2**63 - 1


def _number(raw) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= MAX_ID else None


def _close(request) -> StageChange | None:
    pk = _number(request.POST.get("stage_change"))
    if pk is None:
        return None
    return (
        StageChange.objects.select_related("lead", "reason")
        .filter(pk=pk, to_stage__in=CLOSE_STAGES)
        .first()
    )


def _page(request, *, lead: Lead | None, card=None, message: str = "", status: int = 400):
    return render(
        request,
        "content/stories_record.html",
        {"lead": lead, "card": card, "message": message},
        status=status,
    )


@team_member_required
@require_POST
def story_record_view(request):
    close = _close(request)
    if close is None:
        return _page(
            request,
            lead=None,
            message="This deal is not one whose story can be told: it was not won or lost, or "
            "it no longer exists. Go back to the lead and try again.",
            status=404,
        )
    lead = close.lead
    story = story_of(close)
    assets = story_assets(lead=lead, story=story) if close.to_stage == Stage.WON else []
    form = StoryForm(request.POST, close=close, story=story, assets=assets)
    if form.is_valid():
        data = form.cleaned_data
        try:
            story_record(
                stage_change=close,
                by=request.user,
                reasons=data["reasons"],
                sentence=data["sentence"],
                competitor=data.get("competitor", ""),
                assets=data.get("assets", []),
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Thank you: the story is recorded for both teams.")
            return redirect(reverse("leads:detail", args=[lead.pk]) + "#story")
    # the close named, even when the lead has moved on since (a lost lead recycled)
    card = StoryCard(
        close=close,
        story=story,
        can_tell=may_tell_story(lead=lead, user=request.user),
        form=form,
    )
    refusal = " ".join(e for errors in form.errors.values() for e in errors)
    return _page(request, lead=lead, card=card, message="" if card.can_tell else refusal)
