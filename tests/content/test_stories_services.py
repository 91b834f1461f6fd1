"""story_record: who may tell a deal's story, what a story must hold, one story per close (told
again: the same row, the event again), the snapshot of source and campaign."""

import datetime as dt

import pytest
from django.utils import timezone

from alignment.lib.errors import DomainError, PermissionDenied
from content.models import DealStory
from content.stories.services import latest_close, story_record
from leads.intake import source_for
from leads.models import EventType, Lead, LeadEvent, Reason, Stage, StageChange
from tests.content.test_stories_data import asset, close
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def events():
    return list(LeadEvent.objects.filter(type=EventType.STORY_RECORDED).order_by("id"))


def test_the_owner_tells_a_win_with_reasons_a_sentence_and_the_content_that_helped(rep):
    source, campaign = source_for("LinkedIn"), CampaignFactory(name="Spring webinar")
    won = close(owner=rep, source=source, campaign=campaign)
    case = asset("Bank case study")

    story = story_record(
        stage_change=won,
        by=rep,
        reasons=["product_fit", "proof", "proof"],
        sentence="  The bank case study\nsettled it. ",
        assets=[case.pk],
    )

    assert story.outcome == "won" and story.lead_id == won.lead_id
    assert sorted(r.code for r in story.reasons.all()) == ["product_fit", "proof"]
    assert story.sentence == "The bank case study settled it."
    assert [a.pk for a in story.assets.all()] == [case.pk]
    assert (story.source, story.campaign, story.closed_at) == (source, campaign, won.at)
    assert story.recorded_by == rep
    [event] = events()
    assert event.lead_id == won.lead_id and event.actor == rep
    assert event.payload == {
        "story_id": story.pk,
        "outcome": "won",
        "reasons": ["product_fit", "proof"],
        "competitor": "",
        "asset_ids": [case.pk],
        "stage_change_id": won.pk,
    }


def test_telling_again_changes_the_same_story_and_keeps_the_snapshot(rep, sales_manager):
    lost = close(outcome=Stage.LOST, owner=rep, source=source_for("Google"), reason="price")
    first = story_record(stage_change=lost, by=rep, reasons=["price"])
    lead = lost.lead
    lead.source = source_for("Referral")
    lead.save()

    again = story_record(
        stage_change=lost,
        by=sales_manager,
        reasons=["competitor"],
        competitor="Acme",
        sentence="Acme was cheaper.",
    )

    assert again.pk == first.pk and DealStory.objects.count() == 1
    assert [r.code for r in again.reasons.all()] == ["competitor"]
    assert again.competitor == "Acme" and again.recorded_by == sales_manager
    assert again.source.name == "Google"
    assert [e.payload["reasons"] for e in events()] == [["price"], ["competitor"]]


@pytest.mark.parametrize("who", ["marketer", "marketing_manager", "outsider"])
def test_marketing_and_outsiders_may_not_tell_a_story(people, who):
    won = close(owner=people["rep"])
    with pytest.raises(PermissionDenied):
        story_record(stage_change=won, by=people[who], reasons=["value"])
    assert not DealStory.objects.exists() and not events()


def test_a_rep_tells_only_the_story_of_his_own_lead(rep, other_rep, sales_manager, admin_user):
    won = close(owner=other_rep)
    with pytest.raises(DomainError, match="not assigned to you"):
        story_record(stage_change=won, by=rep, reasons=["value"])
    assert story_record(stage_change=won, by=other_rep, reasons=["value"])
    assert story_record(stage_change=won, by=sales_manager, reasons=["speed"])
    assert story_record(stage_change=won, by=admin_user, reasons=["support"])
    assert len(events()) == 3


def test_only_a_move_to_won_or_lost_has_a_story(rep):
    won = close(owner=rep)
    move = StageChange.objects.create(
        lead=won.lead, from_stage=Stage.SQL, to_stage=Stage.OPPORTUNITY, at=timezone.now()
    )
    with pytest.raises(DomainError, match="won or lost") as refused:
        story_record(stage_change=move, by=rep, reasons=["value"])
    assert refused.value.field == "stage_change"


@pytest.mark.parametrize(
    ("outcome", "fields", "field", "message"),
    [
        (Stage.WON, {"reasons": []}, "reasons", "at least one reason"),
        (Stage.WON, {"reasons": ["price"]}, "reasons", "not a reason for a won deal"),
        (Stage.LOST, {"reasons": ["product_fit"]}, "reasons", "not a reason for a lost deal"),
        (Stage.WON, {"reasons": ["other"]}, "sentence", "say in one sentence"),
        (Stage.LOST, {"reasons": ["other"], "sentence": "  "}, "sentence", "say in one"),
        (Stage.WON, {"reasons": ["value"], "sentence": "x" * 301}, "sentence", "300 characters"),
        (Stage.LOST, {"reasons": ["competitor"]}, "competitor", "Which competitor"),
        (Stage.WON, {"reasons": ["value"], "competitor": "Acme"}, "competitor", "lost deal only"),
        (Stage.LOST, {"reasons": ["price"], "competitor": "A" * 101}, "competitor", "100"),
        (Stage.LOST, {"reasons": ["price"], "assets": [1]}, "assets", "won deal only"),
        (Stage.WON, {"reasons": ["value"], "assets": [999999]}, "assets", "no asset 999999"),
        (Stage.WON, {"reasons": ["value"], "assets": ["x"]}, "assets", "asset id"),
    ],
)
def test_a_story_that_breaks_a_rule_is_refused_and_nothing_is_written(
    rep, outcome, fields, field, message
):
    closed = close(outcome=outcome, owner=rep)
    with pytest.raises(DomainError, match=message) as refused:
        story_record(stage_change=closed, by=rep, **fields)
    assert refused.value.field == field
    assert not DealStory.objects.exists() and not events()


def test_other_with_a_sentence_and_an_inactive_reason(rep):
    won = close(owner=rep)
    story = story_record(stage_change=won, by=rep, reasons=["other"], sentence="Their CEO.")
    assert story.sentence == "Their CEO."
    Reason.objects.filter(kind="won", code="speed").update(active=False)
    with pytest.raises(DomainError, match="not a reason"):
        story_record(stage_change=won, by=rep, reasons=["speed"])


def test_latest_close_is_the_newest_move_to_won_or_lost(rep):
    lost = close(outcome=Stage.LOST, owner=rep, at=timezone.now() - dt.timedelta(days=9))
    lead = lost.lead
    assert latest_close(lead) == lost
    StageChange.objects.create(
        lead=lead, from_stage=Stage.LOST, to_stage=Stage.RECYCLED, at=timezone.now()
    )
    assert latest_close(lead) == lost
    later = StageChange.objects.create(
        lead=lead,
        from_stage=Stage.OPPORTUNITY,
        to_stage=Stage.WON,
        at=timezone.now() - dt.timedelta(days=1),
    )
    assert latest_close(lead) == later
    assert latest_close(Lead.objects.create(email="never@closed.example")) is None
