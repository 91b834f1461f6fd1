"""`{% lead_story lead user as story %}` (the lead page's right column): the latest close of a won
or lost lead, its story if told, and the form to tell or change it, so that the leads app's view
needs nothing from content/. `{% untold_stories user as untold %}` (a rep's home): his closed
deals still waiting for their story; templates/content/stories_untold.html shows them."""

from dataclasses import dataclass

from django import template

from alignment.models import User
from alignment.permissions import Action, can
from content.models import DealStory, StoryOutcome
from content.stories.forms import StoryForm, story_assets
from content.stories.selectors import stories_untold
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


# a home card lists this many; the count says how many more
UNTOLD_SHOWN = 5


@dataclass(frozen=True)
class Untold:
    closes: list[StageChange]
    count: int


@register.simple_tag
def untold_stories(user: User | None) -> Untold | None:
    """The user's closed deals without a story (None when he tells no stories or has none)."""
    if user is None or not getattr(user, "pk", None) or not can(user, Action.STORY_RECORD):
        return None
    closes = list(stories_untold(owner=user)[: UNTOLD_SHOWN + 1])
    if not closes:
        return None
    count = len(closes) if len(closes) <= UNTOLD_SHOWN else stories_untold(owner=user).count()
    return Untold(closes=closes[:UNTOLD_SHOWN], count=count)
