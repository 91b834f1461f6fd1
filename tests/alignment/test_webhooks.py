"""Webhooks out: subscriptions, the outbox fan-out, signed delivery to a real HTTP receiver on
localhost, retries with backoff, disabling with an email to the admins, resend, the SSRF guard."""

import base64
import hashlib
import hmac
import json
import random
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import Notification
from alignment.webhooks import delivery as delivery_module
from alignment.webhooks.delivery import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    deliveries_due,
    deliveries_prune,
    delivery_attempt,
    retry_delay,
)
from alignment.webhooks.models import (
    AttemptTrigger,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from alignment.webhooks.services import (
    delivery_resend,
    endpoint_create,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_update,
    webhooks_reaction,
)
from alignment.webhooks.ssrf import address_refused, url_check
from alignment.webhooks.tasks import webhooks_retry_due_task
from leads.events import NewEvent, event_record, events_record_bulk, outbox_dispatch, reactions_for
from leads.intake import lead_intake
from leads.models import EventType, LeadEvent, OutboxEntry
from tests.conftest import wait_for
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

REACTION = "alignment.webhooks.services.webhooks_reaction"


# --- a real receiver -------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: dict | None


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies each POST's Standard Webhooks signature with
    `secret` (400 when it does not verify) and answers the statuses queued in `answers`."""

    def __init__(self):
        self.requests: list[Received] = []
        self.answers: list[int] = []
        self.reply_body = b"ok"
        self.secret: str | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def bodies(self) -> list[dict]:
        return [json.loads(r.body) for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = dict(self.headers.items())
        verified = None
        status = receiver.answers.pop(0) if receiver.answers else 200
        if receiver.secret:
            try:
                verified = Webhook(receiver.secret).verify(body, headers)
            except WebhookVerificationError:
                status = 400
        receiver.requests.append(Received(self.path, headers, body, verified))
        self.send_response(status)
        if status in (301, 302, 307):
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", str(len(receiver.reply_body)))
        self.end_headers()
        self.wfile.write(receiver.reply_body)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


@pytest.fixture
def strict(settings):
    """The guard as in production: no DEBUG, no private addresses."""
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_PRIVATE = False


def subscribe(receiver: Receiver, event_types=("*",), by=None, **kwargs) -> WebhookEndpoint:
    endpoint, secret = endpoint_create(
        url=kwargs.pop("url", receiver.url), event_types=list(event_types), by=by, **kwargs
    )
    receiver.secret = secret
    return endpoint


def fake_dns(monkeypatch, mapping: dict[str, str]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in mapping:
            address = mapping[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def record(lead, type=EventType.LEAD_STAGE_CHANGED, payload=None):
    return event_record(
        type=type,
        lead=lead,
        system="test",
        payload=payload if payload is not None else {"from": "new", "to": "mql"},
    )


# --- "*" in the outbox's reactions -----------------------------------------------------------


def test_star_reactions_apply_to_every_event_type_once(settings):
    settings.OUTBOX_REACTIONS = {
        "lead.won": ["a.won"],
        "touchpoint.recorded[sales]": ["b.sales"],
        "*": ["c.all", "a.won"],
    }
    assert reactions_for("lead.won") == ("a.won", "c.all")
    assert reactions_for("lead.created") == ("c.all", "a.won")
    assert reactions_for("touchpoint.recorded", {"sales": True}) == ("c.all", "a.won", "b.sales")
    assert reactions_for("scoring.activated") == ("c.all", "a.won")


def webhook_entries(event) -> list[str]:
    return list(
        OutboxEntry.objects.filter(event_id=event.pk, reaction=REACTION).values_list(
            "reaction", flat=True
        )
    )


def test_with_no_endpoint_events_queue_nothing_for_webhooks():
    lead = LeadFactory()
    event = record(lead, type=EventType.TOUCHPOINT_RECORDED, payload={"kind": "web_visit"})
    assert webhook_entries(event) == []


def test_an_event_is_queued_for_webhooks_when_an_active_endpoint_wants_its_type(receiver):
    lead = LeadFactory()
    endpoint = subscribe(receiver, ["lead.stage_changed"])

    assert webhook_entries(record(lead)) == [REACTION]
    touch = record(lead, type=EventType.TOUCHPOINT_RECORDED, payload={"kind": "web_visit"})
    assert webhook_entries(touch) == []

    endpoint_update(endpoint=endpoint, by=None, event_types=["*"])
    touch = record(lead, type=EventType.TOUCHPOINT_RECORDED, payload={"kind": "web_visit"})
    assert webhook_entries(touch) == [REACTION]

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    assert webhook_entries(record(lead)) == []


def test_bulk_events_ask_the_gate_once(receiver, django_assert_num_queries):
    lead = LeadFactory()
    subscribe(receiver, ["lead.updated"])
    events = [
        NewEvent(type=t, lead_id=lead.pk, occurred_at=timezone.now(), payload={}, system="x")
        for t in ["lead.updated", "touchpoint.recorded"] * 20
    ]
    # the events, the gate's one read, the outbox entries
    with django_assert_num_queries(3):
        events_record_bulk(events)
    assert OutboxEntry.objects.filter(reaction=REACTION).count() == 20


# --- delivery through the outbox ---------------------------------------------------------------


def test_an_event_reaches_the_receiver_signed_with_the_lead(
    receiver, rep, django_capture_on_commit_callbacks
):
    endpoint = subscribe(receiver, ["lead.created", "lead.stage_changed"])
    with django_capture_on_commit_callbacks(execute=True):
        result = lead_intake(
            data={"email": "ada@lovelace.example", "first_name": "Ada", "external_id": "crm-1"},
            by=rep,
        )
    created = LeadEvent.objects.get(lead=result.lead, type=EventType.LEAD_CREATED)

    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got.path == "/hooks"
    assert got.verified is not None  # the receiver checked the signature
    assert got.headers["webhook-id"] == f"evt_{created.pk}"
    assert got.headers["Content-Type"] == "application/json"
    body = got.verified
    assert body["id"] == f"evt_{created.pk}"
    assert body["type"] == "lead.created"
    assert body["timestamp"].endswith("Z") or "+" in body["timestamp"]
    assert body["data"]["event"]["id"] == created.pk
    assert body["data"]["event"]["actor"] == {"username": rep.username, "system": ""}
    assert body["data"]["event"]["at"] == body["timestamp"]
    assert body["data"]["event"]["payload"]["email"] == "ada@lovelace.example"
    assert body["data"]["lead"]["id"] == result.lead.pk
    assert body["data"]["lead"]["external_id"] == "crm-1"

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    attempt = delivery.attempt_log.get()
    assert attempt.succeeded and attempt.status_code == 200 and attempt.latency_ms is not None
    assert attempt.response_excerpt == "ok" and attempt.trigger == AttemptTrigger.AUTO


def test_a_wrong_secret_does_not_verify(receiver, django_capture_on_commit_callbacks):
    subscribe(receiver)
    receiver.secret = "whsec_" + "QUJD" * 8  # not the endpoint's
    with django_capture_on_commit_callbacks(execute=True):
        record(LeadFactory())
    assert receiver.requests[0].verified is None
    assert WebhookAttempt.objects.get().status_code == 400


def test_only_subscribed_types_and_active_endpoints_are_delivered(
    receiver, django_capture_on_commit_callbacks
):
    moves = subscribe(receiver, ["lead.stage_changed"])
    everything = subscribe(receiver, ["*"])
    paused = subscribe(receiver, ["*"], is_active=False)
    receiver.secret = None
    lead = LeadFactory()
    with django_capture_on_commit_callbacks(execute=True):
        record(lead, type=EventType.LEAD_ASSIGNED, payload={"owner_id": None})
        record(lead, type=EventType.LEAD_STAGE_CHANGED)

    by_endpoint = {
        e.pk: sorted(e.deliveries.values_list("event_type", flat=True))
        for e in (moves, everything, paused)
    }
    assert by_endpoint == {
        moves.pk: ["lead.stage_changed"],
        everything.pk: ["lead.assigned", "lead.stage_changed"],
        paused.pk: [],
    }
    assert len(receiver.requests) == 3


def test_each_event_reaches_each_endpoint_exactly_once(
    receiver, django_capture_on_commit_callbacks
):
    first = subscribe(receiver)
    second = subscribe(receiver)
    receiver.secret = None
    lead = LeadFactory()
    with django_capture_on_commit_callbacks(execute=True):
        events = [record(lead), record(lead, type=EventType.LEAD_MQL)]
    # the dispatcher again, and the reaction run again by hand (a retried outbox entry)
    with django_capture_on_commit_callbacks(execute=True):
        outbox_dispatch()
        for event in events:
            webhooks_reaction(event)
        webhooks_retry_due_task()

    assert WebhookDelivery.objects.count() == 4
    for endpoint in (first, second):
        assert sorted(endpoint.deliveries.values_list("event_id", flat=True)) == sorted(
            e.pk for e in events
        )
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert sorted(ids) == sorted([f"evt_{e.pk}" for e in events] * 2)


def test_delivery_waits_for_commit_and_a_rolled_back_event_sends_nothing(
    receiver, django_capture_on_commit_callbacks
):
    subscribe(receiver)
    lead = LeadFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(lead)
    assert receiver.requests == [] and WebhookDelivery.objects.count() == 0
    assert callbacks  # the dispatcher's kick, run only after commit


# --- retries -----------------------------------------------------------------------------------


def test_backoff_follows_the_schedule_with_twenty_percent_jitter():
    rng, expected_rng = random.Random(7), random.Random(7)
    delays = [retry_delay(n, rng=rng) for n in range(1, MAX_ATTEMPTS + 1)]
    expected = [
        timedelta(seconds=round(base.total_seconds() * (1 + expected_rng.uniform(-0.2, 0.2)), 3))
        for base in RETRY_SCHEDULE
    ]
    assert delays == [*expected, None]
    assert [d.total_seconds() for d in delays[:2]] != [30, 120]  # jittered
    for delay, base in zip(delays, RETRY_SCHEDULE, strict=False):
        assert 0.8 * base <= delay <= 1.2 * base


def test_a_500_is_retried_after_the_backoff_and_then_delivered(
    receiver, django_capture_on_commit_callbacks
):
    subscribe(receiver)
    receiver.answers = [500, 503]
    with django_capture_on_commit_callbacks(execute=True):
        record(LeadFactory())
    delivery = WebhookDelivery.objects.get()
    first = delivery.attempt_log.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.last_status_code == 500
    wait = delivery.next_attempt_at - first.attempted_at
    assert timedelta(seconds=24) <= wait <= timedelta(seconds=36)

    # not due yet: the sweep leaves it alone
    assert deliveries_due(now=first.attempted_at + timedelta(seconds=20)) == []
    assert (
        delivery_attempt(
            delivery_id=delivery.pk, now=delivery.next_attempt_at - timedelta(seconds=1)
        )
        == "taken"
    )

    now = delivery.next_attempt_at
    rng = random.Random(3)
    assert delivery_attempt(delivery_id=delivery.pk, now=now, rng=rng) == "retry"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == now + retry_delay(2, rng=random.Random(3))
    assert deliveries_due(now=delivery.next_attempt_at) == [delivery.pk]

    assert delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at) == "succeeded"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 3
    assert [a.status_code for a in delivery.attempt_log.order_by("id")] == [500, 503, 200]
    # the same message each time: same id, same body, each signature valid
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    assert all(r.verified for r in receiver.requests)


def test_the_beat_sweep_sends_what_is_due(receiver, monkeypatch):
    endpoint = subscribe(receiver)
    receiver.secret = None
    lead = LeadFactory()
    webhooks_reaction(record(lead))  # no commit: no kick, as if the broker had lost it
    assert receiver.requests == []
    webhooks_retry_due_task()
    assert len(receiver.requests) == 1
    assert endpoint.deliveries.get().status == DeliveryStatus.SUCCEEDED


def test_redirects_are_not_followed_and_the_excerpt_is_at_most_1_kb(
    receiver, django_capture_on_commit_callbacks
):
    subscribe(receiver)
    receiver.answers = [302]
    receiver.reply_body = b"x" * 5000
    with django_capture_on_commit_callbacks(execute=True):
        record(LeadFactory())
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 302 and not attempt.succeeded
    assert len(attempt.response_excerpt) == 1024
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING


def test_a_refused_connection_is_logged_as_an_error(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    endpoint, _ = endpoint_create(url=f"http://127.0.0.1:{port}/", event_types=["*"], by=None)
    webhooks_reaction(record(LeadFactory()))
    delivery = endpoint.deliveries.get()
    assert delivery_attempt(delivery_id=delivery.pk) == "retry"
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "Connection" in attempt.error
    delivery.refresh_from_db()
    assert "Connection" in delivery.last_error


def exhaust(delivery: WebhookDelivery, rng=None) -> list:
    """Attempt a delivery at each of its due times until it is given up."""
    outcomes = []
    for _ in range(MAX_ATTEMPTS + 1):
        delivery.refresh_from_db()
        if delivery.status != DeliveryStatus.PENDING:
            break
        outcomes.append(
            delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at, rng=rng)
        )
    return outcomes


def test_a_delivery_is_given_up_after_the_last_retry(receiver):
    endpoint = subscribe(receiver)
    receiver.answers = [500] * 20
    webhooks_reaction(record(LeadFactory()))
    delivery = endpoint.deliveries.get()
    outcomes = exhaust(delivery, rng=random.Random(11))
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["failed"]
    times = list(delivery.attempt_log.order_by("id").values_list("attempted_at", flat=True))
    expected_rng = random.Random(11)
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [
        retry_delay(n, rng=expected_rng) for n in range(1, MAX_ATTEMPTS)
    ]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1 and endpoint.is_active


def test_repeated_failures_disable_the_endpoint_and_email_the_admins(
    receiver, admin_user, rep, smtp_server, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_DISABLE_AFTER = 2
    endpoint = subscribe(receiver, description="HubSpot sync")
    receiver.answers = [500] * 50
    lead = LeadFactory()
    first = record(lead)
    webhooks_reaction(first)
    second = record(lead, type=EventType.LEAD_MQL)
    webhooks_reaction(second)
    third = record(lead, type=EventType.LEAD_ACCEPTED)
    webhooks_reaction(third)
    d1, d2, d3 = endpoint.deliveries.order_by("id")

    exhaust(d1)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 1
    with django_capture_on_commit_callbacks(execute=True):
        exhaust(d2)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    assert "2 deliveries in a row" in endpoint.disabled_reason

    # every admin is told, in the bell and by email through the real SMTP server
    note = Notification.objects.get(kind="webhooks.disabled")
    assert note.user == admin_user and note.url == f"/webhooks/{endpoint.pk}/"
    assert not Notification.objects.filter(user=rep).exists()
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message.rcpt_tos == [admin_user.email]
    assert b"Webhook endpoint disabled: HubSpot sync" in message.content

    # what was still due for it is not sent any more
    sent = len(receiver.requests)
    d3.refresh_from_db()
    assert delivery_attempt(delivery_id=d3.pk, now=d3.next_attempt_at) == "skipped"
    d3.refresh_from_db()
    assert d3.status == DeliveryStatus.FAILED and "disabled" in d3.last_error
    assert len(receiver.requests) == sent

    # enabling it again clears the count
    endpoint_update(endpoint=endpoint, by=admin_user, is_active=True)
    endpoint.refresh_from_db()
    assert (
        endpoint.is_active and endpoint.consecutive_failures == 0 and not endpoint.disabled_reason
    )


def test_a_success_resets_the_failure_count(receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER = 2
    endpoint = subscribe(receiver)
    receiver.answers = [500] * MAX_ATTEMPTS
    lead = LeadFactory()
    webhooks_reaction(record(lead))
    exhaust(endpoint.deliveries.get())
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1
    webhooks_reaction(record(lead, type=EventType.LEAD_MQL))
    exhaust(endpoint.deliveries.filter(status=DeliveryStatus.PENDING).get())
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.is_active


def test_410_gone_disables_at_once(
    receiver, admin_user, smtp_server, django_capture_on_commit_callbacks
):
    endpoint = subscribe(receiver)
    receiver.answers = [410]
    with django_capture_on_commit_callbacks(execute=True):
        record(LeadFactory())
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason
    assert endpoint.deliveries.get().status == DeliveryStatus.FAILED
    assert len(smtp_server.messages) == 1


# --- resend, test, rotate -----------------------------------------------------------------------


def test_resend_sends_the_same_message_again(
    receiver, admin_user, django_capture_on_commit_callbacks
):
    endpoint = subscribe(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        record(LeadFactory())
    delivery = endpoint.deliveries.get()
    with django_capture_on_commit_callbacks(execute=True):
        delivery_resend(delivery=delivery, by=admin_user)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    assert receiver.requests[1].verified is not None
    assert [a.trigger for a in delivery.attempt_log.order_by("id")] == ["auto", "resend"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1


def test_resend_needs_an_admin_and_an_active_endpoint(receiver, admin_user, rep):
    endpoint = subscribe(receiver)
    webhooks_reaction(record(LeadFactory()))
    delivery = endpoint.deliveries.get()
    with pytest.raises(PermissionDenied):
        delivery_resend(delivery=delivery, by=rep)
    endpoint_update(endpoint=endpoint, by=admin_user, is_active=False)
    with pytest.raises(DomainError, match="disabled"):
        delivery_resend(delivery=delivery, by=admin_user)


def test_a_test_message_is_sent_once_even_to_a_disabled_endpoint(
    receiver, admin_user, django_capture_on_commit_callbacks
):
    endpoint = subscribe(receiver, is_active=False)
    receiver.answers = [500]
    with django_capture_on_commit_callbacks(execute=True):
        delivery = endpoint_send_test(endpoint=endpoint, by=admin_user)
    body = receiver.requests[0].verified
    assert body["type"] == "webhook.test" and body["id"].startswith("test_")
    delivery.refresh_from_db()
    # tried once: not retried, not counted towards disabling
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert delivery.attempt_log.get().trigger == AttemptTrigger.TEST
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_rotation_signs_with_both_secrets_for_a_day(receiver, admin_user, monkeypatch):
    endpoint = subscribe(receiver)
    old = receiver.secret
    endpoint, new = endpoint_rotate_secret(endpoint=endpoint, by=admin_user)
    assert new != old and new.startswith("whsec_")
    webhooks_reaction(record(LeadFactory()))
    delivery = endpoint.deliveries.get()
    receiver.secret = None
    delivery_attempt(delivery_id=delivery.pk)
    got = receiver.requests[0]
    assert got.headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)

    # a day later only the new secret signs
    later = timezone.now() + timedelta(hours=25)
    monkeypatch.setattr(delivery_module.timezone, "now", lambda: later)
    delivery_resend(delivery=delivery, by=admin_user, now=later)
    delivery_attempt(delivery_id=delivery.pk, now=later)
    got = receiver.requests[1]
    assert got.headers["webhook-signature"].count("v1,") == 1


def test_secrets_follow_the_standard_webhooks_format(admin_user, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint, secret = endpoint_create(url="http://127.0.0.1/", event_types=["*"], by=admin_user)
    assert secret.startswith("whsec_")
    Webhook(secret)  # base64 the package accepts
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_endpoint_input_is_checked(admin_user, rep, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with pytest.raises(PermissionDenied):
        endpoint_create(url="http://127.0.0.1/", event_types=["*"], by=rep)
    with pytest.raises(DomainError) as e:
        endpoint_create(url="http://127.0.0.1/", event_types=["lead.exploded"], by=admin_user)
    assert e.value.field == "event_types"
    with pytest.raises(DomainError) as e:
        endpoint_create(url="http://127.0.0.1/", event_types=[], by=admin_user)
    assert e.value.field == "event_types"
    endpoint, _ = endpoint_create(
        url="http://127.0.0.1/", event_types=["lead.won", "*"], by=admin_user
    )
    assert endpoint.event_types == ["*"]
    assert WebhookEndpoint.objects.count() == 1


# --- the SSRF guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://127.8.9.10:8080/",
        "http://10.1.2.3/",
        "http://192.168.0.7/",
        "http://172.20.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[2002:a00:1::]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
        "http://localhost:8000/",
    ],
)
def test_the_guard_refuses_private_and_reserved_addresses(strict, url):
    with pytest.raises(DomainError) as e:
        url_check(url)
    assert e.value.field == "url"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://x/",
        "http://",
        "http://u:p@example.com/",
        "not a url",
    ],
)
def test_the_guard_refuses_other_schemes_and_credentials(strict, url):
    with pytest.raises(DomainError):
        url_check(url)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.8", "169.254.169.254", "::1"])
def test_a_hostname_resolving_to_a_private_address_is_refused(strict, monkeypatch, address):
    fake_dns(monkeypatch, {"hooks.example.com": address})
    with pytest.raises(DomainError, match="private or reserved"):
        url_check("https://hooks.example.com/in")
    with pytest.raises(DomainError):
        endpoint_create(url="https://hooks.example.com/in", event_types=["*"], by=None)
    assert not WebhookEndpoint.objects.exists()


def test_a_public_address_is_allowed(strict, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": "93.184.216.34"})
    url_check("https://hooks.example.com/in")
    assert not address_refused("2606:2800:220:1:248:1893:25c8:1946")


def test_the_guard_checks_again_when_sending(strict, receiver, monkeypatch, settings):
    """A name that was public at save time and points at 127.0.0.1 later (DNS rebinding)."""
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    port = receiver.server.server_address[1]
    fake_dns(monkeypatch, {"hooks.example.com": "93.184.216.34"})
    endpoint, _ = endpoint_create(
        url=f"http://hooks.example.com:{port}/hooks", event_types=["*"], by=None
    )
    webhooks_reaction(record(LeadFactory()))
    fake_dns(monkeypatch, {"hooks.example.com": "127.0.0.1"})
    delivery = endpoint.deliveries.get()
    assert delivery_attempt(delivery_id=delivery.pk) == "retry"
    assert receiver.requests == []
    assert "private or reserved" in WebhookAttempt.objects.get().error

    # the same request reaches the receiver where private addresses are allowed
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    delivery.refresh_from_db()
    assert delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at) == "succeeded"
    assert len(receiver.requests) == 1


def test_debug_allows_private_addresses(settings):
    settings.DEBUG = True
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    url_check("http://127.0.0.1:9000/hooks")


def test_nothing_is_emailed_when_nothing_fails(
    receiver, admin_user, django_capture_on_commit_callbacks
):
    subscribe(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        record(LeadFactory())
    assert mail.outbox == [] and not Notification.objects.exists()


# --- the README's verification snippets ---------------------------------------------------------


def plain_hmac_verify(raw_body: bytes, headers: dict[str, str], secret: str) -> bool:
    """The README's standard-library snippet, word for word."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > 300:
        return False
    signed = f"{msg_id}.{stamp}.".encode() + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.removeprefix("v1,"))
        for sig in headers["webhook-signature"].split()
    )


NODE_VERIFY = """
const crypto = require("crypto");
function verify(rawBody, headers, secret) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const id = headers["webhook-id"], stamp = headers["webhook-timestamp"];
  if (Math.abs(Date.now() / 1000 - Number(stamp)) > 300) return false;
  const expected = crypto.createHmac("sha256", key)
    .update(`${id}.${stamp}.${rawBody}`).digest();
  return headers["webhook-signature"].split(" ").some((s) => {
    const sig = Buffer.from(s.replace(/^v1,/, ""), "base64");
    return sig.length === expected.length && crypto.timingSafeEqual(sig, expected);
  });
}
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(String(verify(input.body, input.headers, input.secret)));
"""


@pytest.fixture
def signed_message(receiver, admin_user):
    """A real delivery with a non-ASCII body, as the receiver got it, after a rotation (so it
    carries two signatures)."""
    endpoint = subscribe(receiver)
    old = receiver.secret
    endpoint, new = endpoint_rotate_secret(endpoint=endpoint, by=admin_user)
    receiver.secret = None
    lead = LeadFactory(first_name="Zoë", company="Müller & Søn")
    webhooks_reaction(record(lead))
    delivery_attempt(delivery_id=endpoint.deliveries.get().pk)
    got = receiver.requests[0]
    assert "Zoë".encode() in got.body
    return got, old, new


def test_the_plain_hmac_snippet_verifies_a_real_message(signed_message):
    got, old, new = signed_message
    assert plain_hmac_verify(got.body, got.headers, new)
    assert plain_hmac_verify(got.body, got.headers, old)
    assert not plain_hmac_verify(got.body + b" ", got.headers, new)
    assert not plain_hmac_verify(got.body, got.headers, "whsec_" + "QUJD" * 8)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_the_node_snippet_verifies_a_real_message(signed_message):
    got, old, new = signed_message
    headers = {k.lower(): v for k, v in got.headers.items()}

    def node(body: str, secret: str) -> str:
        data = json.dumps({"body": body, "headers": headers, "secret": secret})
        done = subprocess.run(
            ["node", "-e", NODE_VERIFY], input=data, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert node(got.body.decode(), new) == "true"
    assert node(got.body.decode() + " ", new) == "false"


def test_finished_deliveries_leave_the_log_after_30_days(receiver):
    endpoint = subscribe(receiver)
    lead = LeadFactory()
    webhooks_reaction(record(lead))
    webhooks_reaction(record(lead, type=EventType.LEAD_MQL))
    done, waiting = endpoint.deliveries.order_by("id")
    delivery_attempt(delivery_id=done.pk)
    done.refresh_from_db()
    assert done.status == DeliveryStatus.SUCCEEDED

    assert deliveries_prune(now=done.finished_at + timedelta(days=29)) == 0
    assert deliveries_prune(now=done.finished_at + timedelta(days=31)) == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert not WebhookAttempt.objects.exists()


def test_a_delivery_deleted_while_it_was_sent_is_left_alone(receiver, monkeypatch):
    endpoint = subscribe(receiver)
    webhooks_reaction(record(LeadFactory()))
    delivery = endpoint.deliveries.get()
    real_post = delivery_module.http_post

    def post_then_delete(url, **kwargs):
        outcome = real_post(url, **kwargs)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()  # an admin, meanwhile
        return outcome

    monkeypatch.setattr(delivery_module, "http_post", post_then_delete)
    assert delivery_attempt(delivery_id=delivery.pk) == "taken"
    assert not WebhookAttempt.objects.exists()
    assert delivery_attempt(delivery_id=delivery.pk) == "taken"  # gone: nothing to do


@pytest.fixture
def worker_allows_private(monkeypatch):
    """The worker process reads its settings from the environment."""
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE", "true")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_a_committed_event_once(
    worker_allows_private, receiver, celery_worker_process
):
    endpoint = subscribe(receiver, ["lead.created"])
    result = lead_intake(data={"email": "ada@engines.example"}, system="crm")  # commits: kicks
    wait_for(
        lambda: endpoint.deliveries.filter(status=DeliveryStatus.SUCCEEDED).exists(), timeout=60
    )
    created = LeadEvent.objects.get(lead=result.lead, type=EventType.LEAD_CREATED)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [f"evt_{created.pk}"]
    assert receiver.requests[0].verified["data"]["lead"]["email"] == "ada@engines.example"
    # the beat jobs' passes afterwards find nothing to do
    assert outbox_dispatch().done == 0
    webhooks_retry_due_task()
    assert len(receiver.requests) == 1
