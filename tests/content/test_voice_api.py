"""The objections API: list with filters and cursor pages, log one (201, a person's, a rep on his
own leads), read one, PATCH its answer (marketing, sales-ready assets); 400 problems with field
errors, 403 without the scope or the role, 404 for unknown ids."""

import datetime as dt

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from content.models import Asset, Objection
from content.voice.services import objection_log
from leads.models import EventType, LeadEvent
from tests.factories import CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/objections/"


def client_for(user=None, scopes=("feedback:read", "feedback:write")):
    cache.clear()
    _, raw = api_key_create(name="crm", scopes=list(scopes), as_user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def ready(title="Security overview", sales_ready=True):
    return Asset.objects.create(
        title=title,
        kind="deck",
        funnel_stage="decision",
        url="https://e.x/s",
        sales_ready=sales_ready,
    )


def test_a_rep_logs_on_his_lead_and_reads_it_back(rep):
    campaign = CampaignFactory()
    lead = LeadFactory(owner=rep, campaign=campaign)
    api = client_for(rep)
    response = api.post(
        URL,
        {"lead": lead.pk, "category": "security", "kind": "question", "text": " SOC 2? "},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lead"] == lead.pk and body["campaign"] == campaign.pk
    assert (body["kind"], body["category"], body["text"]) == ("question", "security", "SOC 2?")
    assert body["logged_by"] == "rep" and body["answer"] is None and body["competitor"] == ""
    assert LeadEvent.objects.filter(type=EventType.OBJECTION_LOGGED, lead=lead).count() == 1
    read = api.get(f"{URL}{body['id']}/")
    assert read.status_code == 200 and read.json() == body


def test_the_list_filters_and_pages_newest_first(rep):
    a, b = LeadFactory(owner=rep), LeadFactory(owner=rep, campaign=CampaignFactory())
    first = objection_log(lead=a, by=rep, category="price", text="1")
    second = objection_log(lead=b, by=rep, category="price", text="2")
    third = objection_log(lead=a, by=rep, category="timing", text="3")
    api = client_for(rep, scopes=("feedback:read",))

    page = api.get(URL, {"page_size": 2}).json()
    assert [r["id"] for r in page["results"]] == [third.pk, second.pk]
    rest = api.get(URL, {"page_size": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["results"]] == [first.pk] and rest["next"] is None

    def ids(**params):
        return [r["id"] for r in api.get(URL, params).json()["results"]]

    assert ids(lead=a.pk) == [third.pk, first.pk]
    assert ids(category="price") == [second.pk, first.pk]
    assert ids(campaign=b.campaign_id) == [second.pk]
    Objection.objects.filter(pk=first.pk).update(logged_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert ids(until="2026-01-02T00:00:00Z") == [first.pk]
    assert ids(since="2026-01-02T00:00:00+01:00") == [third.pk, second.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"lead": "x"},
        {"category": "weather"},
        {"since": "2026-01-01T00:00:00"},
        {"until": "yesterday"},
        {"cursor": "junk"},
        {"page_size": 0},
        {"campaign": -1},
        {"until": ""},
        {"lead": " "},
    ],
)
def test_bad_filters_are_400_problems(rep, params):
    response = client_for(rep).get(URL, params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"category": "price", "text": ""}, "text"),
        ({"category": "price", "text": "x" * 2001}, "text"),
        ({"category": "weather", "text": "x"}, "category"),
        ({"category": "price", "text": "x", "kind": "rant"}, "kind"),
        ({"category": "price", "text": "x", "competitor": "A" * 101}, "competitor"),
        ({"category": "price", "text": "x", "lead": 99999999}, "lead"),
        ({"category": "price", "text": "x", "lead": "abc"}, "lead"),
        ({"category": "price", "text": ["x"]}, "text"),
    ],
)
def test_bad_input_is_a_400_with_field_errors(rep, data, field):
    lead = LeadFactory(owner=rep)
    response = client_for(rep).post(URL, {"lead": lead.pk, **data}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Objection.objects.exists()


def test_a_junk_body_is_a_400_not_a_500(rep):
    api = client_for(rep)
    for body in ([1, 2], "text", None):
        assert api.post(URL, body, format="json").status_code == 400


def test_roles_and_people(rep, other_rep, marketer, sales_manager):
    theirs = LeadFactory(owner=other_rep)
    data = {"lead": theirs.pk, "category": "price", "text": "Dear"}
    assert client_for(rep).post(URL, data, format="json").status_code == 403
    assert client_for(marketer).post(URL, data, format="json").status_code == 403
    nobody = client_for(None).post(URL, data, format="json")
    assert nobody.status_code == 403 and "person" in nobody.json()["detail"]
    assert client_for(sales_manager).post(URL, data, format="json").status_code == 201
    # reading is for every team role
    assert client_for(marketer, scopes=("feedback:read",)).get(URL).status_code == 200


def test_scopes(rep):
    lead = LeadFactory(owner=rep)
    objection = objection_log(lead=lead, by=rep, category="price", text="Dear")
    read_only = client_for(rep, scopes=("feedback:read",))
    write_only = client_for(rep, scopes=("feedback:write",))
    other = client_for(rep, scopes=("content:read", "content:write"))
    data = {"lead": lead.pk, "category": "price", "text": "Dear"}
    assert read_only.post(URL, data, format="json").status_code == 403
    assert write_only.get(URL).status_code == 403
    assert other.get(f"{URL}{objection.pk}/").status_code == 403
    assert other.patch(f"{URL}{objection.pk}/", {"answer": None}, format="json").status_code == 403


def test_marketing_patches_the_answer_then_unlinks_it(rep, marketer):
    objection = objection_log(lead=LeadFactory(owner=rep), by=rep, category="security", text="?")
    answer = ready()
    api = client_for(marketer)
    linked = api.patch(f"{URL}{objection.pk}/", {"answer": answer.pk}, format="json")
    assert linked.status_code == 200, linked.content
    assert (
        linked.json()["answer"] == answer.pk and linked.json()["answered_by"] == marketer.username
    )
    unlinked = api.patch(f"{URL}{objection.pk}/", {"answer": None}, format="json")
    assert unlinked.json()["answer"] is None
    assert LeadEvent.objects.filter(type=EventType.OBJECTION_ANSWERED).count() == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"answer": "x"}, 400), ({"answer": 99999999}, 400), ({"answer": 0}, 400)],
)
def test_bad_answers(rep, marketer, body, status):
    objection = objection_log(lead=LeadFactory(owner=rep), by=rep, category="price", text="?")
    response = client_for(marketer).patch(f"{URL}{objection.pk}/", body, format="json")
    assert response.status_code == status and "answer" in response.json()["errors"]


def test_a_draft_answer_is_refused_and_sales_may_not_patch(rep, marketer):
    objection = objection_log(lead=LeadFactory(owner=rep), by=rep, category="price", text="?")
    draft = ready(sales_ready=False)
    refused = client_for(marketer).patch(
        f"{URL}{objection.pk}/", {"answer": draft.pk}, format="json"
    )
    assert refused.status_code == 400 and "not sales ready" in refused.json()["errors"]["answer"][0]
    by_rep = client_for(rep).patch(f"{URL}{objection.pk}/", {"answer": ready().pk}, format="json")
    assert by_rep.status_code == 403
    objection.refresh_from_db()
    assert objection.answer is None


def test_unknown_ids_are_404(marketer):
    api = client_for(marketer)
    assert api.get(f"{URL}99999999/").status_code == 404
    assert api.patch(f"{URL}99999999/", {"answer": None}, format="json").status_code == 404
    assert api.get(f"{URL}{2**63}/").status_code == 404
