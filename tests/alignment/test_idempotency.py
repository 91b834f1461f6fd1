import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from alignment.idempotency import idempotent_prune
from alignment.models import IdempotentRequest, WorkerHeartbeat
from tests.alignment import idempotency_urls

pytestmark = pytest.mark.django_db

URL = "/things/"


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = "tests.alignment.idempotency_urls"
    idempotency_urls.CALLS.clear()
    cache.clear()


def rows(name: str):
    return WorkerHeartbeat.objects.filter(name__startswith=f"{name}#")


def client_for(*scopes: str) -> APIClient:
    _, raw = api_key_create(name="CRM", scopes=list(scopes) or ["leads:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(URL, body, format="json", **headers)


def test_without_a_key_every_post_does_the_work():
    client = client_for()
    post(client, {"name": "a"})
    post(client, {"name": "a"})
    assert rows("a").count() == 2
    assert not IdempotentRequest.objects.exists()


def test_a_retry_with_the_same_key_gets_the_first_answer_and_does_nothing_again():
    client = client_for()
    first = post(client, {"name": "a"}, key="k-1")
    again = post(client, {"name": "a"}, key="k-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert rows("a").count() == 1
    assert idempotency_urls.CALLS == ["a"]


def test_the_same_key_with_another_body_is_refused_and_changes_nothing():
    client = client_for()
    post(client, {"name": "a"}, key="k-1")
    other = post(client, {"name": "b"}, key="k-1")

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert not rows("b").exists()


def test_keys_belong_to_their_caller():
    post(client_for(), {"name": "a"}, key="shared")
    post(client_for(), {"name": "a"}, key="shared")
    assert rows("a").count() == 2


def test_a_refusal_is_replayed_but_a_server_error_runs_again():
    client = client_for()
    bad = post(client, {"name": ""}, key="k-bad")
    assert bad.status_code == 400
    assert post(client, {"name": ""}, key="k-bad").json() == bad.json()
    assert idempotency_urls.CALLS == []

    boom = post(client, {"name": "boom"}, key="k-boom")
    assert boom.status_code == 500
    assert boom["Content-Type"].startswith("application/problem+json")
    post(client, {"name": "boom"}, key="k-boom")
    assert idempotency_urls.CALLS == ["boom", "boom"]
    assert not IdempotentRequest.objects.filter(key="k-boom").exists()


def test_a_retry_while_the_first_still_runs_is_a_conflict():
    client = client_for()
    first = post(client, {"name": "a"}, key="k-1")
    assert first.status_code == 201
    # as if the first request were still running: claimed, no answer yet
    IdempotentRequest.objects.filter(key="k-1").update(status_code=None, response=None)

    again = post(client, {"name": "a"}, key="k-1")
    assert again.status_code == 409
    assert again.json()["code"] == "idempotency_in_progress"
    assert rows("a").count() == 1


def test_after_24_hours_the_key_is_forgotten():
    client = client_for()
    post(client, {"name": "a"}, key="k-1")
    IdempotentRequest.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))

    post(client, {"name": "a"}, key="k-1")
    assert rows("a").count() == 2


def test_prune_deletes_only_answers_older_than_a_day():
    client = client_for()
    post(client, {"name": "a"}, key="old")
    post(client, {"name": "b"}, key="new")
    IdempotentRequest.objects.filter(key="old").update(
        created_at=timezone.now() - dt.timedelta(hours=25)
    )
    assert idempotent_prune() == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new"]


def test_an_overlong_key_is_a_field_error():
    response = post(client_for(), {"name": "a"}, key="x" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not WorkerHeartbeat.objects.exists()


def test_the_scope_is_checked_before_any_replay():
    response = post(client_for("leads:read"), {"name": "a"}, key="k-1")
    assert response.status_code == 403
    assert not IdempotentRequest.objects.exists()
