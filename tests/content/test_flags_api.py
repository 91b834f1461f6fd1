"""Lead flags over REST: scopes, a person behind every write, filters and cursor, problem+json
errors with field errors."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from alignment.models import Role
from content.flags.services import flag_comment, flag_raise, flag_resolve
from content.models import FlagMessage, FlagStatus, LeadFlag
from leads.models import EventType, LeadEvent
from tests.factories import CampaignFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/flags/"
READ, WRITE = "feedback:read", "feedback:write"


@pytest.fixture(autouse=True)
def _no_throttle_history():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner_mkt(db):
    return UserFactory(username="mia", role=Role.MARKETER)


@pytest.fixture
def lead(rep, owner_mkt):
    return LeadFactory(owner=rep, campaign=CampaignFactory(marketing_owner=owner_mkt))


def client_with(*scopes, as_user=None) -> APIClient:
    _, raw = api_key_create(name="crm", scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def problem(response, status):
    assert response.status_code == status, response.content[:400]
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def _raise(lead, by, reason="wrong_routing"):
    return flag_raise(lead=lead, by=by, reason=reason, comment="Routed to the wrong team.")


def test_a_rep_flags_his_lead_through_a_key_acting_as_him(lead, rep):
    answer = client_with(WRITE, as_user=rep).post(
        URL, {"lead": lead.pk, "reason": "wrong_routing", "comment": "Munich."}, format="json"
    )
    assert answer.status_code == 201, answer.content
    flag = LeadFlag.objects.get()
    assert answer["Location"] == f"{URL}{flag.pk}/"
    body = answer.json()
    assert {k: body[k] for k in ("id", "lead_id", "reason", "comment", "raised_by", "status")} == {
        "id": flag.pk,
        "lead_id": lead.pk,
        "reason": "wrong_routing",
        "comment": "Munich.",
        "raised_by": "rep",
        "status": "open",
    }
    assert body["messages"] == [] and body["outcome"] == "" and body["resolved_at"] is None
    assert LeadEvent.objects.filter(type=EventType.FLAG_RAISED).count() == 1


def test_writes_need_a_person_and_the_scope(lead, rep):
    data = {"lead": lead.pk, "reason": "other", "comment": "x"}
    problem(client_with(WRITE).post(URL, data, format="json"), 403)  # a key of its own
    problem(client_with(READ, as_user=rep).post(URL, data, format="json"), 403)
    problem(client_with(WRITE, as_user=rep).get(URL), 403)
    assert not LeadFlag.objects.exists()


def test_roles_hold_through_the_api(lead, other_rep, marketer, rep):
    data = {"lead": lead.pk, "reason": "other", "comment": "x"}
    problem(client_with(WRITE, as_user=other_rep).post(URL, data, format="json"), 403)
    problem(client_with(WRITE, as_user=marketer).post(URL, data, format="json"), 403)
    flag = _raise(lead, rep)
    resolve = f"{URL}{flag.pk}/resolve/"
    problem(client_with(WRITE, as_user=rep).post(resolve, {"outcome": "fixed"}, format="json"), 403)
    problem(
        client_with(WRITE, as_user=other_rep).post(
            f"{URL}{flag.pk}/messages/", {"body": "x"}, format="json"
        ),
        403,
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"reason": "other", "comment": "x"}, "lead"),
        ({"lead": "abc", "reason": "other", "comment": "x"}, "lead"),
        ({"lead": 2**70, "reason": "other", "comment": "x"}, "lead"),
        ({"lead": 999999, "reason": "other", "comment": "x"}, "lead"),
        ({"lead": "LEAD", "reason": "bogus", "comment": "x"}, "reason"),
        ({"lead": "LEAD", "reason": "other", "comment": ""}, "comment"),
        ({"lead": "LEAD", "reason": "other", "comment": "   "}, "comment"),
        ({"lead": "LEAD", "reason": "other", "comment": ["x"]}, "comment"),
    ],
)
def test_bad_input_is_a_400_with_field_errors(lead, rep, data, field):
    data = {k: lead.pk if v == "LEAD" else v for k, v in data.items()}
    body = problem(client_with(WRITE, as_user=rep).post(URL, data, format="json"), 400)
    assert field in body["errors"]
    assert not LeadFlag.objects.exists()


def test_a_duplicate_open_flag_is_a_400(lead, rep):
    _raise(lead, rep)
    body = problem(
        client_with(WRITE, as_user=rep).post(
            URL, {"lead": lead.pk, "reason": "wrong_routing", "comment": "x"}, format="json"
        ),
        400,
    )
    assert "already has an open flag" in body["detail"] and "reason" in body["errors"]


def test_the_list_filters_and_pages_by_cursor(lead, rep, owner_mkt, sales_manager):
    other = LeadFactory(owner=rep)
    a = _raise(lead, rep)
    b = _raise(lead, rep, reason="wrong_data")
    c = _raise(other, sales_manager, reason="duplicate")
    flag_resolve(flag=a, by=owner_mkt, outcome="rerouted")
    client = client_with(READ)
    ids = lambda r: [row["id"] for row in r.json()["results"]]  # noqa: E731
    assert ids(client.get(URL)) == [c.pk, b.pk, a.pk]
    assert ids(client.get(URL, {"status": "open"})) == [c.pk, b.pk]
    assert ids(client.get(URL, {"status": "resolved"})) == [a.pk]
    assert ids(client.get(URL, {"lead": lead.pk})) == [b.pk, a.pk]
    assert ids(client.get(URL, {"reason": "duplicate"})) == [c.pk]
    first = client.get(URL, {"page_size": 2}).json()
    assert [r["id"] for r in first["results"]] == [c.pk, b.pk] and first["next_cursor"]
    second = client.get(URL, {"page_size": 2, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in second["results"]] == [a.pk] and second["next_cursor"] is None
    for junk in ({"status": "x"}, {"reason": "x"}, {"lead": "x"}, {"lead": "0"}, {"cursor": "!!"}):
        body = problem(client.get(URL, junk), 400)
        assert set(junk) & set(body["errors"])


def test_read_one_with_its_thread(lead, rep, owner_mkt):
    flag = _raise(lead, rep)
    flag_comment(flag=flag, by=owner_mkt, body="Which team?")
    body = client_with(READ).get(f"{URL}{flag.pk}/").json()
    assert [(m["author"], m["body"]) for m in body["messages"]] == [("mia", "Which team?")]
    problem(client_with(READ).get(f"{URL}999999/"), 404)
    problem(client_with(WRITE).get(f"{URL}{flag.pk}/"), 403)


def test_reply_and_resolve(lead, rep, owner_mkt):
    flag = _raise(lead, rep)
    answer = client_with(WRITE, as_user=owner_mkt).post(
        f"{URL}{flag.pk}/messages/", {"body": "Fixing the rule."}, format="json"
    )
    assert answer.status_code == 201, answer.content
    message = FlagMessage.objects.get()
    assert answer.json() == {
        "id": message.pk,
        "author": "mia",
        "body": "Fixing the rule.",
        "created_at": answer.json()["created_at"],
    }
    body = problem(
        client_with(WRITE, as_user=owner_mkt).post(
            f"{URL}{flag.pk}/resolve/", {"outcome": "declined"}, format="json"
        ),
        400,
    )
    assert "resolution" in body["errors"]
    problem(
        client_with(WRITE, as_user=owner_mkt).post(
            f"{URL}{flag.pk}/resolve/", {"outcome": "nope"}, format="json"
        ),
        400,
    )
    answer = client_with(WRITE, as_user=owner_mkt).post(
        f"{URL}{flag.pk}/resolve/",
        {"outcome": "rerouted", "resolution": "Now with Anna."},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["status"], body["outcome"], body["resolved_by"]) == (
        FlagStatus.RESOLVED,
        "rerouted",
        "mia",
    )
    assert len(body["messages"]) == 1
    problem(
        client_with(WRITE, as_user=owner_mkt).post(
            f"{URL}{flag.pk}/messages/", {"body": "late"}, format="json"
        ),
        400,
    )
    problem(
        client_with(WRITE, as_user=owner_mkt).post(
            f"{URL}{flag.pk}/resolve/", {"outcome": "fixed"}, format="json"
        ),
        400,
    )
    problem(
        client_with(WRITE, as_user=owner_mkt).post(
            f"{URL}999999/resolve/", {"outcome": "fixed"}, format="json"
        ),
        404,
    )
