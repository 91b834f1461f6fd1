"""A rep's closed deals still waiting for their story (content.stories.selectors.stories_untold
and the home card templates/content/stories_untold.html)."""

import datetime as dt

import pytest
from django.template import Context, Template
from django.utils import timezone

from content.stories.selectors import stories_untold
from content.stories.services import story_record
from leads.models import Stage, StageChange
from tests.content.test_stories_data import close

pytestmark = pytest.mark.django_db


def card(user) -> str:
    return Template('{% include "content/stories_untold.html" %}').render(Context({"user": user}))


def test_only_the_reps_current_closes_without_a_story_are_listed(rep, other_rep):
    now = timezone.now()
    older = close(owner=rep, at=now - dt.timedelta(days=2), company="Initech")
    newer = close(outcome=Stage.LOST, owner=rep, at=now - dt.timedelta(hours=1), company="Hooli")
    told = close(owner=rep)
    story_record(stage_change=told, by=rep, reasons=["value"])
    close(owner=other_rep)  # someone else's
    recycled = close(outcome=Stage.LOST, owner=rep, at=now - dt.timedelta(days=3))
    lead = recycled.lead
    lead.stage, lead.stage_changed_at = Stage.RECYCLED, now
    lead.save()
    StageChange.objects.create(lead=lead, from_stage=Stage.LOST, to_stage=Stage.RECYCLED, at=now)

    assert list(stories_untold(owner=rep)) == [newer, older]

    html = card(rep)
    assert "2 closed deals without their story" in html
    assert html.index("Hooli") < html.index("Initech")
    assert f'href="/leads/{newer.lead_id}/#story"' in html


def test_no_card_for_marketing_or_when_every_story_is_told(rep, marketer):
    won = close(owner=rep)
    assert card(marketer).strip() == ""
    story_record(stage_change=won, by=rep, reasons=["value"])
    assert card(rep).strip() == ""
