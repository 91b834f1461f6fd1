"""The stories API: list with filters and cursor pages, tell a close's story by lead or stage
change (201, then 200 on the same story), read and PATCH one, the reason codes; 400 problems with
field errors, 403 without the scope or the role, a story told by a person only."""

import datetime as dt

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from content.models import DealStory
from content.stories.services import story_record
from leads.models import EventType, Lead, LeadEvent, Stage
from tests.content.test_stories_data import asset, close

pytestmark = pytest.mark.django_db

URL = "/api/v1/stories/"


def client_for(user=None, scopes=("feedback:read", "feedback:write")):
    cache.clear()
    _, raw = api_key_create(name="crm", scopes=list(scopes), as_user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_a_rep_tells_the_story_of_his_leads_latest_close_then_changes_it(rep):
    lost = close(outcome=Stage.LOST, owner=rep)
    api = client_for(rep)

    first = api.post(
        URL,
        {"lead": lost.lead_id, "reasons": ["competitor"], "competitor": "Acme"},
        format="json",
    )
    again = api.post(
        URL, {"stage_change": lost.pk, "reasons": ["price"], "sentence": "Too dear."}, format="json"
    )

    assert first.status_code == 201, first.content
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    body = again.json()
    assert body["outcome"] == "lost" and body["stage_change"] == lost.pk
    assert body["reasons"] == [{"code": "price", "label": "Price"}]
    assert body["sentence"] == "Too dear." and body["competitor"] == ""
    assert body["recorded_by"] == "rep"
    assert LeadEvent.objects.filter(type=EventType.STORY_RECORDED).count() == 2


def test_patch_changes_only_the_fields_sent(sales_manager, rep):
    won = close(owner=rep)
    helped = asset()
    story = story_record(stage_change=won, by=rep, reasons=["value"], sentence="Cheaper.")
    api = client_for(sales_manager)

    response = api.patch(f"{URL}{story.pk}/", {"assets": [helped.pk]}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assets"] == [{"id": helped.pk, "title": helped.title}]
    assert body["sentence"] == "Cheaper." and body["reasons"][0]["code"] == "value"
    assert api.get(f"{URL}{story.pk}/").json() == body


def test_list_filters_and_pages(rep, marketer):
    now = dt.datetime.now(dt.UTC)
    old = close(owner=rep, at=now - dt.timedelta(days=30))
    stories = [
        story_record(stage_change=old, by=rep, reasons=["value"]),
        story_record(stage_change=close(outcome=Stage.LOST, owner=rep), by=rep, reasons=["price"]),
        story_record(stage_change=close(owner=rep), by=rep, reasons=["speed"]),
    ]
    api = client_for(marketer, scopes=["feedback:read"])

    everything = api.get(URL, {"page_size": 2}).json()
    assert [s["id"] for s in everything["results"]] == [stories[2].pk, stories[1].pk]
    rest = api.get(URL, {"page_size": 2, "cursor": everything["next_cursor"]}).json()
    assert [s["id"] for s in rest["results"]] == [stories[0].pk] and rest["next"] is None
    won = api.get(URL, {"outcome": "won"}).json()["results"]
    assert [s["id"] for s in won] == [stories[2].pk, stories[0].pk]
    since = (now - dt.timedelta(days=2)).isoformat()
    recent = api.get(URL, {"since": since, "outcome": "won"}).json()["results"]
    assert [s["id"] for s in recent] == [stories[2].pk]
    until = api.get(URL, {"until": since}).json()["results"]
    assert [s["id"] for s in until] == [stories[0].pk]
    by_lead = api.get(URL, {"lead": old.lead_id}).json()["results"]
    assert [s["id"] for s in by_lead] == [stories[0].pk]


def test_a_page_costs_a_fixed_number_of_queries(rep, django_assert_max_num_queries):
    for _ in range(4):
        story_record(stage_change=close(owner=rep), by=rep, reasons=["value", "proof"])
    api = client_for(rep, scopes=["feedback:read"])
    with django_assert_max_num_queries(8):
        assert len(api.get(URL).json()["results"]) == 4


def test_the_reason_codes_by_outcome(marketer):
    body = client_for(marketer, scopes=["feedback:read"]).get("/api/v1/story-reasons/").json()
    assert body["won"][0] == {"code": "product_fit", "label": "Product fit"}
    assert {"code": "competitor", "label": "Chose a competitor"} in body["lost"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "reasons"),
        ({"reasons": ["value"]}, "lead"),
        ({"reasons": ["value"], "lead": 1, "stage_change": 1}, "lead"),
        ({"reasons": ["value"], "lead": 999999}, "lead"),
        ({"reasons": ["value"], "stage_change": 999999}, "stage_change"),
        ({"reasons": ["value"], "lead": "x"}, "lead"),
        ({"reasons": ["value"], "lead": 2**70}, "lead"),
        ({"reasons": "value", "lead": 1}, "reasons"),
        ({"reasons": ["price"], "lead": 1}, "reasons"),
        ({"reasons": [], "lead": 1}, "reasons"),
        ({"reasons": ["other"], "lead": 1}, "sentence"),
        ({"reasons": ["value"], "lead": 1, "sentence": "x" * 301}, "sentence"),
        ({"reasons": ["value"], "lead": 1, "competitor": "Acme"}, "competitor"),
        ({"reasons": ["value"], "lead": 1, "assets": [999999]}, "assets"),
        ({"reasons": ["value"], "lead": 1, "assets": ["x"]}, "assets.0"),
        ({"reasons": ["value"], "lead": 1, "sentence": 0}, "sentence"),
        ({"reasons": [7], "lead": 1}, "reasons.0"),
        ({"reasons": ["value"], "lead": "12"}, "lead"),
        ({"reasons": ["value"], "lead": True}, "lead"),
    ],
)
def test_bad_input_is_a_400_problem_naming_the_field(rep, payload, field):
    won = close(owner=rep)
    payload = {
        k: (won.lead_id if k == "lead" and v == 1 and v is not True else v)
        for k, v in payload.items()
    }
    response = client_for(rep).post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in response.json()["errors"], response.json()
    assert not DealStory.objects.exists()


def test_a_lead_never_closed_has_no_story_to_tell(rep):
    lead = Lead.objects.create(email="open@example.com", owner=rep)
    response = client_for(rep).post(URL, {"lead": lead.pk, "reasons": ["value"]}, format="json")
    assert (
        response.status_code == 400 and "never won or lost" in response.json()["errors"]["lead"][0]
    )


def test_bad_filters_are_400s(rep):
    api = client_for(rep)
    for params in (
        {"outcome": "maybe"},
        {"since": "2026-11-18T09:00:00"},
        {"lead": "x"},
        {"until": ""},
    ):
        response = api.get(URL, params)
        assert response.status_code == 400 and response.json()["errors"], params
    assert api.get(URL, {"cursor": "nonsense"}).status_code == 400
    assert api.get(f"{URL}{2**63}/").status_code == 404
    assert api.get(f"{URL}12345/").status_code == 404


@pytest.mark.parametrize("who", ["marketer", "outsider", "other_rep"])
def test_those_who_may_not_tell_get_a_403_and_nothing_changes(people, other_rep, who):
    won = close(owner=people["rep"])
    user = other_rep if who == "other_rep" else people[who]
    response = client_for(user).post(
        URL, {"lead": won.lead_id, "reasons": ["value"]}, format="json"
    )
    assert response.status_code in (400, 403), response.content
    if who != "other_rep":
        assert response.status_code == 403
    else:
        assert "not assigned to you" in response.json()["detail"]
    assert not DealStory.objects.exists()


def test_a_key_acting_as_nobody_reads_but_does_not_tell(rep):
    won = close(owner=rep)
    api = client_for(None)
    assert api.get(URL).status_code == 200
    response = api.post(URL, {"lead": won.lead_id, "reasons": ["value"]}, format="json")
    assert response.status_code == 403 and "told by a person" in response.json()["detail"]


def test_scopes_are_required(rep):
    won = close(owner=rep)
    story = story_record(stage_change=won, by=rep, reasons=["value"])
    write_only = client_for(rep, scopes=["feedback:write"])
    read_only = client_for(rep, scopes=["feedback:read"])
    for response in (
        write_only.get(URL),
        write_only.get(f"{URL}{story.pk}/"),
        write_only.get("/api/v1/story-reasons/"),
        read_only.post(URL, {"lead": won.lead_id, "reasons": ["speed"]}, format="json"),
        read_only.patch(f"{URL}{story.pk}/", {"sentence": "x"}, format="json"),
    ):
        assert response.status_code == 403 and "lacks the scope" in response.json()["detail"]
    assert DealStory.objects.get().sentence == ""
