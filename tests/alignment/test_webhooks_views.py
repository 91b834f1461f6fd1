"""The admin pages under /webhooks/: list, create (secret shown once), edit, the delivery log
with resend and test buttons; everyone else gets 403."""

import pytest
from django.urls import reverse

from alignment.webhooks.delivery import delivery_attempt
from alignment.webhooks.models import DeliveryStatus, WebhookEndpoint
from alignment.webhooks.services import endpoint_create, webhooks_reaction
from tests.alignment import test_webhooks as support
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

receiver = support.receiver


@pytest.fixture
def endpoint(receiver):
    endpoint, secret = endpoint_create(
        url=receiver.url, event_types=["lead.stage_changed"], description="CRM", by=None
    )
    receiver.secret = secret
    return endpoint


@pytest.fixture
def delivery(endpoint):
    webhooks_reaction(support.record(LeadFactory()))
    return endpoint.deliveries.get()


def pages(endpoint, delivery):
    return [
        ("get", reverse("webhooks:list")),
        ("get", reverse("webhooks:create")),
        ("post", reverse("webhooks:create")),
        ("get", reverse("webhooks:detail", args=[endpoint.pk])),
        ("get", reverse("webhooks:edit", args=[endpoint.pk])),
        ("post", reverse("webhooks:edit", args=[endpoint.pk])),
        ("get", reverse("webhooks:delete", args=[endpoint.pk])),
        ("post", reverse("webhooks:delete", args=[endpoint.pk])),
        ("post", reverse("webhooks:test", args=[endpoint.pk])),
        ("post", reverse("webhooks:rotate", args=[endpoint.pk])),
        ("post", reverse("webhooks:resend", args=[endpoint.pk, delivery.pk])),
    ]


@pytest.mark.parametrize(
    "role", ["marketer", "marketing_manager", "rep", "sales_manager", "outsider"]
)
def test_only_admins_see_the_pages(client, people, role, endpoint, delivery):
    client.force_login(people[role])
    for method, url in pages(endpoint, delivery):
        response = getattr(client, method)(url, {"url": "http://127.0.0.1/", "event_types": ["*"]})
        assert response.status_code == 403, (method, url)
    endpoint.refresh_from_db()
    assert endpoint.description == "CRM" and endpoint.deliveries.count() == 1
    assert WebhookEndpoint.objects.count() == 1


def test_anonymous_is_sent_to_log_in(client, endpoint):
    response = client.get(reverse("webhooks:list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_nav_links_webhooks_for_admins_only(client, admin_user, rep):
    client.force_login(rep)
    assert reverse("webhooks:list") not in client.get(reverse("notifications")).content.decode()
    client.force_login(admin_user)
    assert reverse("webhooks:list") in client.get(reverse("notifications")).content.decode()


def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(client, admin_user, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    client.force_login(admin_user)
    response = client.post(
        reverse("webhooks:create"),
        {
            "url": "http://127.0.0.1:9/in",
            "description": "HubSpot",
            "event_types": ["lead.won", "lead.lost"],
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["lead.won", "lead.lost"] and endpoint.is_active
    assert endpoint.secret in response.content.decode()
    detail = client.get(reverse("webhooks:detail", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in detail and "HubSpot" in detail
    listing = client.get(reverse("webhooks:list")).content.decode()
    assert "http://127.0.0.1:9/in" in listing and endpoint.secret not in listing


def test_a_private_url_is_a_form_error_outside_debug(client, admin_user, settings):
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(admin_user)
    response = client.post(
        reverse("webhooks:create"),
        {"url": "http://169.254.169.254/latest/", "event_types": ["*"], "is_active": "on"},
    )
    assert response.status_code == 200
    assert "private or reserved" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_admin_edits_an_endpoint(client, admin_user, endpoint):
    client.force_login(admin_user)
    response = client.post(
        reverse("webhooks:edit", args=[endpoint.pk]),
        {"url": endpoint.url, "description": "Salesforce", "event_types": ["*"]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.description == "Salesforce" and endpoint.event_types == ["*"]
    assert not endpoint.is_active  # the box was left unticked


def test_the_log_shows_attempts_and_resend_sends_again(
    client, admin_user, delivery, receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [500]
    delivery_attempt(delivery_id=delivery.pk)
    client.force_login(admin_user)
    page = client.get(reverse("webhooks:detail", args=[delivery.endpoint_id])).content.decode()
    assert delivery.msg_id in page and "HTTP 500" in page and "Resend" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("webhooks:resend", args=[delivery.endpoint_id, delivery.pk]))
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 2 and receiver.requests[1].verified is not None


def test_send_test_event_and_rotate_from_the_page(
    client, admin_user, endpoint, receiver, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("webhooks:test", args=[endpoint.pk]))
    assert response.status_code == 302
    assert receiver.requests[0].verified["type"] == "webhook.test"

    old = endpoint.secret
    response = client.post(reverse("webhooks:rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in response.content.decode()


def test_delete_asks_first(client, admin_user, endpoint):
    client.force_login(admin_user)
    assert client.get(reverse("webhooks:delete", args=[endpoint.pk])).status_code == 200
    assert WebhookEndpoint.objects.exists()
    response = client.post(reverse("webhooks:delete", args=[endpoint.pk]))
    assert response.status_code == 302 and not WebhookEndpoint.objects.exists()


def test_the_log_costs_a_fixed_number_of_queries(
    client, admin_user, endpoint, receiver, django_assert_num_queries
):
    lead = LeadFactory()
    client.force_login(admin_user)
    url = reverse("webhooks:detail", args=[endpoint.pk])
    counts = []
    for _ in range(2):
        for _ in range(3):
            webhooks_reaction(support.record(lead))
        for d in endpoint.deliveries.filter(status=DeliveryStatus.PENDING):
            delivery_attempt(delivery_id=d.pk)
        client.get(url)
        # the session, the user, the bell, the endpoint, a page of deliveries, their attempts
        with django_assert_num_queries(6) as captured:
            assert client.get(url).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]
