"""/api/v1/webhooks/: endpoints CRUD, secret rotation, test message, delivery log and resend;
scope webhooks:manage, and an admin when the key acts as a person."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from alignment.api_keys import api_key_create
from alignment.webhooks.delivery import delivery_attempt
from alignment.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from alignment.webhooks.services import endpoint_create, webhooks_reaction
from tests.alignment import test_webhooks as support
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

# the real receiver and the strict guard, shared with the service tests
receiver = support.receiver
strict = support.strict
fake_dns = support.fake_dns
record = support.record

BASE = "/api/v1/webhooks/"


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def bearer(scopes=("webhooks:manage",), as_user=None) -> APIClient:
    _, raw = api_key_create(name="CRM", scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def manager_key():
    return bearer()


@pytest.fixture
def endpoint(receiver):
    endpoint, secret = endpoint_create(url=receiver.url, event_types=["*"], by=None)
    receiver.secret = secret
    return endpoint


@pytest.fixture
def delivery(endpoint):
    webhooks_reaction(record(LeadFactory()))
    return endpoint.deliveries.get()


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def every_call(endpoint_id: int, delivery_id: int) -> list[tuple[str, str, dict | None]]:
    one = f"{BASE}{endpoint_id}/"
    return [
        ("get", BASE, None),
        ("post", BASE, {"url": "http://127.0.0.1:9/", "event_types": ["*"]}),
        ("get", f"{BASE}event-types/", None),
        ("get", one, None),
        ("patch", one, {"description": "changed"}),
        ("delete", one, None),
        ("post", f"{one}rotate-secret/", None),
        ("post", f"{one}test/", None),
        ("get", f"{one}deliveries/", None),
        ("get", f"{one}deliveries/{delivery_id}/", None),
        ("post", f"{one}deliveries/{delivery_id}/resend/", None),
    ]


# --- the happy path ----------------------------------------------------------------------------


def test_create_answers_the_secret_once(manager_key, receiver):
    response = manager_key.post(
        BASE,
        {"url": receiver.url, "event_types": ["lead.won", "lead.lost"], "description": "CRM"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["lead.won", "lead.lost"] and body["is_active"] is True
    assert response["Location"] == reverse("api-webhook", args=[body["id"]])
    Webhook(body["secret"])

    again = manager_key.get(response["Location"]).json()
    assert "secret" not in again and again["description"] == "CRM"
    listed = manager_key.get(BASE).json()["results"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]


def test_create_with_an_idempotency_key_creates_one(manager_key, receiver):
    data = {"url": receiver.url, "event_types": ["*"]}
    first = manager_key.post(BASE, data, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    second = manager_key.post(BASE, data, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert WebhookEndpoint.objects.count() == 1


def test_patch_changes_only_what_is_sent(manager_key, endpoint):
    response = manager_key.patch(
        f"{BASE}{endpoint.pk}/", {"event_types": ["lead.mql"], "is_active": False}, format="json"
    )
    assert response.status_code == 200, response.content
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["lead.mql"] and not endpoint.is_active
    assert endpoint.url.endswith("/hooks") and endpoint.disabled_reason == "Disabled by hand."


def test_delete_removes_the_endpoint_and_its_log(manager_key, delivery):
    response = manager_key.delete(f"{BASE}{delivery.endpoint_id}/")
    assert response.status_code == 204
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert_problem(manager_key.get(f"{BASE}{delivery.endpoint_id}/"), 404)


def test_rotate_answers_a_new_secret(manager_key, endpoint):
    response = manager_key.post(f"{BASE}{endpoint.pk}/rotate-secret/")
    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != endpoint.secret
    assert body["previous_secret_until"] is not None


def test_send_test_queues_a_signed_test_message(
    manager_key, endpoint, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_key.post(f"{BASE}{endpoint.pk}/test/")
    assert response.status_code == 202, response.content
    assert response.json()["event_type"] == "webhook.test"
    assert receiver.requests[0].verified["type"] == "webhook.test"


def test_deliveries_list_and_detail_with_attempts(manager_key, delivery, receiver):
    from_api = manager_key.get(f"{BASE}{delivery.endpoint_id}/deliveries/").json()
    assert [d["id"] for d in from_api["results"]] == [delivery.pk]
    assert from_api["results"][0]["status"] == "pending" and from_api["next_cursor"] is None

    delivery_attempt(delivery_id=delivery.pk)
    detail = manager_key.get(f"{BASE}{delivery.endpoint_id}/deliveries/{delivery.pk}/").json()
    assert detail["status"] == "succeeded"
    assert detail["body"]["id"] == delivery.msg_id
    assert detail["attempt_log"][0]["status_code"] == 200
    assert detail["attempt_log"][0]["response_excerpt"] == "ok"

    failed = manager_key.get(f"{BASE}{delivery.endpoint_id}/deliveries/?status=failed").json()
    assert failed["results"] == []
    bad = manager_key.get(f"{BASE}{delivery.endpoint_id}/deliveries/?status=lost")
    assert "status" in assert_problem(bad, 400)["errors"]


def test_resend_sends_again(manager_key, delivery, receiver, django_capture_on_commit_callbacks):
    delivery_attempt(delivery_id=delivery.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_key.post(
            f"{BASE}{delivery.endpoint_id}/deliveries/{delivery.pk}/resend/"
        )
    assert response.status_code == 202, response.content
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_resend_to_a_disabled_endpoint_is_refused(manager_key, delivery):
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(is_active=False)
    response = manager_key.post(f"{BASE}{delivery.endpoint_id}/deliveries/{delivery.pk}/resend/")
    assert "disabled" in assert_problem(response, 400)["detail"]


def test_a_delivery_of_another_endpoint_is_404(manager_key, delivery, receiver):
    other, _ = endpoint_create(url=receiver.url, event_types=["*"], by=None)
    assert_problem(manager_key.get(f"{BASE}{other.pk}/deliveries/{delivery.pk}/"), 404)
    assert_problem(manager_key.post(f"{BASE}{other.pk}/deliveries/{delivery.pk}/resend/"), 404)


def test_event_types_are_listed(manager_key):
    types = manager_key.get(f"{BASE}event-types/").json()["event_types"]
    assert types[0] == "*" and "lead.stage_changed" in types


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, field",
    [
        ({"url": "http://127.0.0.1/", "event_types": ["lead.boom"]}, "event_types.0"),
        ({"url": "http://127.0.0.1/", "event_types": []}, "event_types"),
        ({"event_types": ["*"]}, "url"),
        ({"url": "ftp://example.com/", "event_types": ["*"]}, "url"),
    ],
)
def test_bad_input_is_a_field_error_and_creates_nothing(manager_key, settings, data, field):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    body = assert_problem(manager_key.post(BASE, data, format="json"), 400)
    assert field in body["errors"], body
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["http://10.0.0.5/", "http://169.254.169.254/", "http://[::1]/"])
def test_private_addresses_are_refused_by_the_api(manager_key, strict, url):
    body = assert_problem(
        manager_key.post(BASE, {"url": url, "event_types": ["*"]}, format="json"), 400
    )
    assert "private or reserved" in body["errors"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_a_patch_to_a_private_host_changes_nothing(manager_key, endpoint, strict, monkeypatch):
    fake_dns(monkeypatch, {"internal.example.com": "10.0.0.9"})
    response = manager_key.patch(
        f"{BASE}{endpoint.pk}/",
        {"url": "https://internal.example.com/", "description": "x"},
        format="json",
    )
    assert "url" in assert_problem(response, 400)["errors"]
    endpoint.refresh_from_db()
    assert endpoint.url.startswith("http://127.0.0.1") and endpoint.description == ""


# --- scopes and roles --------------------------------------------------------------------------


def snapshot():
    return (
        list(WebhookEndpoint.objects.values()),
        list(WebhookDelivery.objects.values()),
    )


def test_a_key_without_the_scope_gets_403_and_changes_nothing(delivery):
    client = bearer(scopes=("leads:read", "leads:write", "events:read"))
    before = snapshot()
    for method, url, data in every_call(delivery.endpoint_id, delivery.pk):
        response = getattr(client, method)(url, data, format="json")
        body = assert_problem(response, 403)
        assert "webhooks:manage" in body["detail"], (method, url)
        assert "results" not in body and "secret" not in body
    assert snapshot() == before


@pytest.mark.parametrize("role", ["marketer", "marketing_manager", "rep", "sales_manager"])
def test_a_key_acting_as_a_non_admin_gets_403(delivery, people, role):
    client = bearer(as_user=people[role])
    before = snapshot()
    for method, url, data in every_call(delivery.endpoint_id, delivery.pk):
        response = getattr(client, method)(url, data, format="json")
        assert "admin" in assert_problem(response, 403)["detail"], (method, url)
    assert snapshot() == before


def test_a_key_acting_as_an_admin_works(admin_user, receiver):
    client = bearer(as_user=admin_user)
    response = client.post(BASE, {"url": receiver.url, "event_types": ["*"]}, format="json")
    assert response.status_code == 201
    assert client.get(BASE).status_code == 200


def test_a_session_needs_an_admin(client, rep, admin_user, endpoint):
    client.force_login(rep)
    assert_problem(client.get(BASE), 403)
    client.force_login(admin_user)
    assert client.get(BASE).json()["results"][0]["id"] == endpoint.pk


def test_no_credentials_get_401():
    assert_problem(APIClient().get(BASE), 401)


# --- fixed query counts ------------------------------------------------------------------------


def test_the_endpoint_list_costs_a_fixed_number_of_queries(
    manager_key, receiver, django_assert_num_queries
):
    for _ in range(3):
        endpoint_create(url=receiver.url, event_types=["*"], by=None)
    manager_key.get(BASE)  # the key's last-used write happens once a minute
    with django_assert_num_queries(2):  # the key, the endpoints
        assert len(manager_key.get(BASE).json()["results"]) == 3
    for _ in range(3):
        endpoint_create(url=receiver.url, event_types=["*"], by=None)
    with django_assert_num_queries(2):
        assert len(manager_key.get(BASE).json()["results"]) == 6


def test_the_delivery_list_costs_a_fixed_number_of_queries(
    manager_key, endpoint, django_assert_num_queries
):
    lead = LeadFactory()
    for _ in range(3):
        webhooks_reaction(record(lead))
    url = f"{BASE}{endpoint.pk}/deliveries/?page_size=2"
    manager_key.get(url)
    with django_assert_num_queries(3):  # the key, the endpoint, one page
        page = manager_key.get(url).json()
    assert len(page["results"]) == 2 and page["next_cursor"]
    with django_assert_num_queries(3):
        rest = manager_key.get(page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next_cursor"] is None
    ids = [d["id"] for d in page["results"] + rest["results"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3


def test_a_delivery_with_many_attempts_costs_a_fixed_number_of_queries(
    manager_key, delivery, receiver, django_assert_num_queries
):
    receiver.answers = [500, 500]
    for _ in range(3):
        delivery.refresh_from_db()
        delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    url = f"{BASE}{delivery.endpoint_id}/deliveries/{delivery.pk}/"
    manager_key.get(url)
    with django_assert_num_queries(3):  # the key, the delivery, its attempts
        log = manager_key.get(url).json()["attempt_log"]
    assert [a["status_code"] for a in log] == [200, 500, 500]
