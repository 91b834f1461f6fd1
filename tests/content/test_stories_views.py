"""The story card on a won or lost lead's page: asked for while the close has no story, shown
once told and editable by the owner or a manager; the form's refusals on a small page of their
own with a back link, never a 500."""

import re

import pytest
from django.urls import reverse

from content.models import AssetUse, DealStory
from leads.models import Stage, Touchpoint
from tests.content.test_stories_data import asset, close
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

RECORD = reverse("content:story_record")


def page(client, lead):
    return client.get(reverse("leads:detail", args=[lead.pk])).content.decode()


def card(body: str) -> str:
    match = re.search(
        r'<section class="card story-card[^"]*" id="story">(.*?)</section>', body, re.S
    )
    return match.group(1) if match else ""


def post(client, closed, **fields):
    data = {"stage_change": closed.pk}
    data.update({f"story{closed.pk}-{k}": v for k, v in fields.items()})
    return client.post(RECORD, data)


def shared(lead, item, by):
    touchpoint = Touchpoint.objects.create(lead=lead, kind="content_shared", created_by=by)
    AssetUse.objects.create(
        asset=item,
        lead=lead,
        touchpoint=touchpoint,
        kind="shared",
        occurred_at=touchpoint.occurred_at,
        by=by,
    )


def test_the_owner_is_asked_what_convinced_them_with_the_leads_content_first(client, rep):
    won = close(owner=rep)
    other = asset("Pricing one-pager")
    sent = asset("Bank case study", sales_ready=False)  # withdrawn since, but it was shared
    shared(won.lead, sent, rep)
    client.force_login(rep)

    body = card(page(client, won.lead))

    assert "What convinced them?" in body and "story-ask" in page(client, won.lead)
    assert 'value="product_fit"' in body and "Proof: references and case studies" in body
    assert body.index("Bank case study") < body.index("Pricing one-pager")
    assert f'value="{other.pk}"' in body
    assert "Competitor" not in body


def test_a_lost_lead_asks_why_with_the_moves_reason_ticked_and_the_competitor(client, rep):
    lost = close(outcome=Stage.LOST, owner=rep, reason="competitor")
    client.force_login(rep)
    body = card(page(client, lost.lead))
    assert "Why did we lose?" in body
    assert re.search(r'value="competitor"[^>]*checked', body)
    assert "Competitor they chose" in body and "Content that helped" not in body


def test_telling_the_story_shows_it_on_the_lead_page(client, rep):
    won = close(owner=rep)
    helped = asset("Bank case study")
    client.force_login(rep)

    response = post(
        client,
        won,
        reasons=["value", "proof"],
        sentence="The case study did it.",
        assets=[helped.pk],
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("leads:detail", args=[won.lead.pk]) + "#story"
    story = DealStory.objects.get()
    assert story.recorded_by == rep
    body = card(page(client, won.lead))
    assert "Value for the price" in body and "“The case study did it.”" in body
    assert "Bank case study" in body and "Change the story" in body


def test_a_manager_changes_the_story_through_the_same_form(client, rep, sales_manager):
    lost = close(outcome=Stage.LOST, owner=rep)
    client.force_login(rep)
    post(client, lost, reasons=["price"])
    client.force_login(sales_manager)
    assert "Change the story" in card(page(client, lost.lead))
    response = post(client, lost, reasons=["competitor"], competitor="Acme")
    assert response.status_code == 302
    story = DealStory.objects.get()
    assert story.competitor == "Acme" and story.recorded_by == sales_manager


def test_marketing_reads_the_story_but_is_not_offered_the_form(client, rep, marketer):
    won = close(owner=rep)
    client.force_login(marketer)
    body = card(page(client, won.lead))
    assert "has not told yet why this deal was won" in body and "<form" not in body
    client.force_login(rep)
    post(client, won, reasons=["speed"], sentence="We called back in ten minutes.")
    client.force_login(marketer)
    body = card(page(client, won.lead))
    assert "Speed of response" in body and "<form" not in body


def test_a_marketer_posting_anyway_is_refused_in_words(client, rep, marketer):
    won = close(owner=rep)
    client.force_login(marketer)
    response = post(client, won, reasons=["value"])
    assert response.status_code == 400
    assert "may not do story.record" in response.content.decode()
    assert not DealStory.objects.exists()


def test_an_open_lead_has_no_story_card(client, rep):
    lead = LeadFactory(stage=Stage.OPPORTUNITY, owner=rep)
    client.force_login(rep)
    assert 'id="story"' not in page(client, lead)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Tick at least one reason."),
        ({"reasons": ["other"]}, "say in one sentence what it was"),
        ({"reasons": ["nonsense"]}, "Select a valid choice"),
        ({"reasons": ["value"], "sentence": "x" * 301}, "at most 300 characters"),
    ],
)
def test_a_refused_story_is_shown_again_with_its_error_and_a_back_link(
    client, rep, fields, message
):
    won = close(owner=rep)
    client.force_login(rep)
    response = post(client, won, **fields)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert f'href="{reverse("leads:detail", args=[won.lead.pk])}#story"' in body
    assert not DealStory.objects.exists()


def test_a_lost_story_naming_the_competitor_reason_needs_the_name(client, rep):
    lost = close(outcome=Stage.LOST, owner=rep)
    client.force_login(rep)
    response = post(client, lost, reasons=["competitor"])
    assert response.status_code == 400
    assert "Which competitor did they choose?" in response.content.decode()


@pytest.mark.parametrize("value", ["", "abc", "0", "-3", str(2**64), "99999999"])
def test_a_missing_or_unknown_close_is_a_page_not_a_500(client, rep, value):
    client.force_login(rep)
    response = client.post(RECORD, {"stage_change": value})
    assert response.status_code == 404
    assert "not one whose story can be told" in response.content.decode()


def test_a_move_that_is_not_a_close_is_refused(client, rep):
    lead = LeadFactory(stage=Stage.OPPORTUNITY, owner=rep)
    move = lead.stage_changes.create(from_stage=Stage.SQL, to_stage=Stage.OPPORTUNITY)
    client.force_login(rep)
    assert client.post(RECORD, {"stage_change": move.pk}).status_code == 404


def test_the_record_url_takes_posts_only_from_team_members(client, rep, outsider):
    client.force_login(rep)
    assert client.get(RECORD).status_code == 405
    client.force_login(outsider)
    assert client.post(RECORD, {"stage_change": 1}).status_code in (302, 403)
