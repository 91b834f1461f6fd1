"""`{% lead_story lead user as story %}` (the lead page's right column): the latest close of a won
or lost lead, its story if told, and the form to tell or change it, so that the leads app's view
needs nothing from content/."""

from dataclasses import dataclass

from django import template

from alignment.models import User
from content.models import DealStory, StoryOutcome
from content.stories.forms import StoryForm, story_assets
from content.stories.services import latest_close, may_tell_story
from leads.models import Lead, Stage, StageChange

register = template.Library()


@dataclass(frozen=True)
class StoryCard:
    close: StageChange
    story: DealStory | None
    can_tell: bool
    form: StoryForm | None

    @property
    def won(self) -> bool:
        return self.close.to_stage == StoryOutcome.WON

    @property
    def title(self) -> str:
        return "What convinced them?" if self.won else "Why did we lose?"


def story_of(close: StageChange) -> DealStory | None:
    return (
        DealStory.objects.filter(stage_change=close)
        .select_related("recorded_by")
        .prefetch_related("reasons", "assets")
        .first()
    )


def story_card(*, lead: Lead, user: User | None, form: StoryForm | None = None) -> StoryCard | None:
    """The card of the lead's latest close (None while the lead is neither won nor lost)."""
    if lead is None or lead.pk is None or lead.stage not in (Stage.WON, Stage.LOST):
        return None
    close = latest_close(lead)
    if close is None:
        return None
    story = story_of(close)
    can_tell = may_tell_story(lead=lead, user=user)
    if can_tell and form is None:
        assets = story_assets(lead=lead, story=story) if close.to_stage == Stage.WON else []
        form = StoryForm(close=close, story=story, assets=assets)
    return StoryCard(close=close, story=story, can_tell=can_tell, form=form if can_tell else None)


@register.simple_tag
def lead_story(lead: Lead | None, user: User | None) -> StoryCard | None:
    return story_card(lead=lead, user=user)
