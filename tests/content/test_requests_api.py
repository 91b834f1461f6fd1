"""Content requests over REST: scopes, a person behind every write, problem+json errors."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from content.models import Asset, ContentRequest, ContentRequestComment, ContentRequestVote
from content.requests.services import content_request_create
from leads.models import EventType, LeadEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/content-requests/"
READ, WRITE = "content:read", "content:write"


@pytest.fixture(autouse=True)
def _no_throttle_history():
    cache.clear()
    yield
    cache.clear()


def client_with(*scopes, as_user=None) -> APIClient:
    _, raw = api_key_create(name="crm", scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def problem(response, status):
    assert response.status_code == status, response.content[:400]
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def _ask(by, title="Banking case study"):
    return content_request_create(by=by, title=title)


def test_a_person_asks_through_a_key_acting_as_them(rep, marketing_manager):
    client = client_with(WRITE, as_user=rep)
    answer = client.post(
        URL,
        {"title": "ROI calculator", "funnel_stage": "decision", "persona": "cfo"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    made = ContentRequest.objects.get()
    assert answer["Location"] == f"{URL}{made.pk}/"
    assert {k: body[k] for k in ("id", "title", "status", "requested_by", "vote_count")} == {
        "id": made.pk,
        "title": "ROI calculator",
        "status": "open",
        "requested_by": "rep",
        "vote_count": 0,
    }
    assert LeadEvent.objects.filter(type=EventType.CONTENT_REQUESTED).count() == 1


def test_bad_input_is_a_400_with_field_errors(rep):
    client = client_with(WRITE, as_user=rep)
    body = problem(client.post(URL, {"title": "", "funnel_stage": "later"}, format="json"), 400)
    assert set(body["errors"]) == {"title", "funnel_stage"}
    body = problem(client.post(URL, ["not", "an", "object"], format="json"), 400)
    assert not ContentRequest.objects.exists()


def test_a_key_of_its_own_may_read_but_not_write(rep):
    made = _ask(rep)
    assert client_with(READ).get(URL).status_code == 200
    body = problem(client_with(WRITE).post(URL, {"title": "x"}, format="json"), 403)
    assert "a person's" in body["detail"]
    problem(client_with(WRITE).post(f"{URL}{made.pk}/vote/"), 403)
    assert ContentRequest.objects.count() == 1


def test_the_scopes(rep):
    made = _ask(rep)
    problem(client_with(WRITE, as_user=rep).get(URL), 403)
    problem(client_with(READ, as_user=rep).post(URL, {"title": "x"}, format="json"), 403)
    problem(client_with(READ, as_user=rep).post(f"{URL}{made.pk}/vote/"), 403)
    problem(client_with(READ, as_user=rep).patch(f"{URL}{made.pk}/", {"status": "planned"}), 403)


def test_list_filters_by_status_and_pages_by_cursor(rep, marketer):
    first = _ask(rep, title="First")
    second = _ask(rep, title="Second")
    third = _ask(rep, title="Third")
    client = client_with(READ, as_user=marketer)
    page = client.get(URL, {"page_size": 2}).json()
    assert [r["id"] for r in page["results"]] == [third.pk, second.pk]
    rest = client.get(URL, {"page_size": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["results"]] == [first.pk]
    assert rest["next_cursor"] is None
    assert client.get(URL, {"status": "done"}).json()["results"] == []
    assert set(problem(client.get(URL, {"status": "nope"}), 400)["errors"]) == {"status"}
    problem(client.get(URL, {"cursor": "junk!"}), 400)
    problem(client.get(URL, {"page_size": "many"}), 400)


def test_read_one_and_a_404(rep):
    made = _ask(rep)
    client = client_with(READ, as_user=rep)
    assert client.get(f"{URL}{made.pk}/").json()["title"] == "Banking case study"
    problem(client.get(f"{URL}{made.pk + 100}/"), 404)


def test_vote_twice_then_take_it_back(rep, other_rep):
    made = _ask(rep)
    client = client_with(WRITE, as_user=other_rep)
    assert client.post(f"{URL}{made.pk}/vote/").json() == {
        "voted": True,
        "changed": True,
        "vote_count": 1,
    }
    assert client.post(f"{URL}{made.pk}/vote/").json() == {
        "voted": True,
        "changed": False,
        "vote_count": 1,
    }
    assert client.delete(f"{URL}{made.pk}/vote/").json() == {
        "voted": False,
        "changed": True,
        "vote_count": 0,
    }
    assert not ContentRequestVote.objects.exists()


def test_marketing_marks_it_done_with_an_asset(rep, marketer):
    made = _ask(rep)
    asset = Asset.objects.create(
        title="Bank case", kind="case_study", funnel_stage="decision", url="https://e.com/b"
    )
    client = client_with(WRITE, as_user=marketer)
    body = problem(client.patch(f"{URL}{made.pk}/", {"status": "done"}, format="json"), 400)
    assert set(body["errors"]) == {"asset"}
    body = problem(
        client.patch(
            f"{URL}{made.pk}/", {"status": "done", "asset_id": asset.pk + 50}, format="json"
        ),
        400,
    )
    assert set(body["errors"]) == {"asset_id"}
    problem(
        client.patch(f"{URL}{made.pk}/", {"status": "done", "asset_id": "x"}, format="json"), 400
    )
    answer = client.patch(
        f"{URL}{made.pk}/", {"status": "done", "asset_id": asset.pk}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert (answer.json()["status"], answer.json()["asset_id"]) == ("done", asset.pk)
    assert answer.json()["decided_by"] == "marketer"


def test_sales_may_not_decide(rep):
    made = _ask(rep)
    client = client_with(WRITE, as_user=rep)
    problem(client.patch(f"{URL}{made.pk}/", {"status": "planned"}, format="json"), 403)
    made.refresh_from_db()
    assert made.status == "open"


def test_comments(rep, marketer):
    made = _ask(rep)
    writer = client_with(WRITE, as_user=marketer)
    answer = writer.post(f"{URL}{made.pk}/comments/", {"body": "Which banks?"}, format="json")
    assert answer.status_code == 201
    assert answer.json()["author"] == "marketer"
    problem(writer.post(f"{URL}{made.pk}/comments/", {"body": ""}, format="json"), 400)
    problem(writer.post(f"{URL}999999/comments/", {"body": "x"}, format="json"), 404)
    page = client_with(READ, as_user=rep).get(f"{URL}{made.pk}/comments/").json()
    assert [c["body"] for c in page["results"]] == ["Which banks?"]
    assert ContentRequestComment.objects.count() == 1


def test_an_outsider_key_reads_nothing(outsider, rep):
    _ask(rep)
    problem(client_with(READ, as_user=outsider).get(URL), 403)
    problem(client_with(WRITE, as_user=outsider).post(URL, {"title": "x"}, format="json"), 403)


def test_the_session_works_too(client, rep):
    client.force_login(rep)
    answer = client.post(URL, {"title": "From the dashboard"}, content_type="application/json")
    assert answer.status_code == 201
