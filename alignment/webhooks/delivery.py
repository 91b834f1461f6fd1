"""Sending one delivery: sign (Standard Webhooks), POST, log the attempt, schedule the retry.

The protocol per attempt, safe to run twice at once:
1. claim: a conditional UPDATE sets `claimed_at` on a pending delivery that is due and whose
   claim is free or stale; only one of two racing senders gets it;
2. POST the stored body, signed now, with no transaction open (a slow receiver holds no lock);
3. in one transaction: the attempt's log row, the delivery's new state (delivered, given up, or
   due again after a backoff with jitter) and the endpoint's failure count; an endpoint that
   answers 410 Gone, or whose deliveries were given up WEBHOOKS_DISABLE_AFTER times in a row, is
   disabled and every admin is notified (the bell and an email).
"""

import http.client
import json
import logging
import random
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.notifications import notify
from alignment.webhooks.models import (
    AttemptTrigger,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from alignment.webhooks.ssrf import guarded_create_connection, url_parts

logger = logging.getLogger(__name__)

# the wait after the n-th failed attempt; one attempt more than waits, then the delivery is given
# up (about 19 hours after the first attempt)
RETRY_SCHEDULE = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
# ± this share of each wait, so that the retries of one outage do not all arrive at once
JITTER = 0.2
TIMEOUT_SECONDS = 10
EXCERPT_BYTES = 1024
# a claim older than this was left by a sender that died (far longer than one request)
CLAIM_STALE_AFTER = timedelta(minutes=5)
USER_AGENT = "LeadPipeline-Webhooks/1"
# the delivery log keeps finished deliveries this long (pending ones until they finish)
KEEP_FINISHED_FOR = timedelta(days=30)

_random = random.Random()


def disable_after() -> int:
    return int(getattr(settings, "WEBHOOKS_DISABLE_AFTER", 5))


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta | None:
    """How long to wait after `attempts` failed attempts, with jitter; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]
    factor = 1 + (rng or _random).uniform(-JITTER, JITTER)
    return timedelta(seconds=round(base.total_seconds() * factor, 3))


# --- signing and sending ---------------------------------------------------------------------


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    """The current secret, and the previous one while its grace period after a rotation runs."""
    found = [endpoint.secret]
    if endpoint.previous_secret and (
        endpoint.previous_secret_until is None or endpoint.previous_secret_until > now
    ):
        found.append(endpoint.previous_secret)
    return found


def signed_headers(*, secrets: list[str], msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers: one `v1,` signature per secret, space-separated."""
    signature = " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body) for secret in secrets
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    scheme, host, port = url_parts(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if scheme == "https":
        conn = http.client.HTTPSConnection(
            host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
    # every connection goes to addresses the SSRF guard has just checked
    conn._create_connection = guarded_create_connection
    return conn, target


def http_post(url: str, *, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST once, following no redirect; a refusal, time-out or broken connection is an
    Outcome with an error, never an exception."""
    started = time.monotonic()
    conn = None
    try:
        conn, target = _connection(url)
        conn.request(
            "POST",
            target,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        response = conn.getresponse()
        latency = round((time.monotonic() - started) * 1000)
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", errors="replace")
        return Outcome(response.status, latency, excerpt, "")
    except DomainError as error:
        return Outcome(None, round((time.monotonic() - started) * 1000), "", error.message)
    except (OSError, http.client.HTTPException, ValueError) as error:
        latency = round((time.monotonic() - started) * 1000)
        return Outcome(None, latency, "", f"{type(error).__name__}: {error}"[:1000])
    finally:
        if conn is not None:
            conn.close()


# --- one attempt -----------------------------------------------------------------------------


def _claim(delivery_id: int, now: datetime) -> bool:
    return (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(claimed_at=None) | Q(claimed_at__lt=now - CLAIM_STALE_AFTER))
        .update(claimed_at=now)
        == 1
    )


def _admins():
    return User.objects.filter(is_active=True).filter(Q(role=Role.ADMIN) | Q(is_superuser=True))


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, now: datetime) -> bool:
    """Disable an active endpoint and tell every admin; False when it was already disabled."""
    done = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300], updated_at=now
    )
    if not done:
        return False
    endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason[:300]
    for admin in _admins():
        notify(
            user=admin,
            kind="webhooks.disabled",
            key=f"webhooks.disabled:endpoint:{endpoint.pk}:{now.isoformat()}",
            title=f"Webhook endpoint disabled: {endpoint}",
            body=(
                f"Deliveries to {endpoint.url} have stopped: {reason} "
                "Fix the receiver, then enable the endpoint again and resend what it missed."
            ),
            url=f"/webhooks/{endpoint.pk}/",
        )
    logger.warning("Webhooks: endpoint %s disabled: %s", endpoint.pk, reason)
    return True


def _record(
    delivery: WebhookDelivery,
    outcome: Outcome,
    *,
    now: datetime,
    trigger: str,
    rng: random.Random | None,
) -> str:
    endpoint = delivery.endpoint
    # still ours? (deleted with its endpoint meanwhile, or a stale claim taken over)
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, claimed_at=now)
    if not mine.select_for_update().exists():
        return "taken"
    attempts = delivery.attempts + 1
    WebhookAttempt.objects.create(
        delivery=delivery,
        attempted_at=now,
        trigger=trigger,
        succeeded=outcome.succeeded,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        response_excerpt=outcome.excerpt,
        error=outcome.error,
    )
    state = {"attempts": attempts, "claimed_at": None, "last_status_code": outcome.status_code}
    if outcome.succeeded:
        mine.update(
            **state,
            status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            finished_at=now,
            last_error="",
        )
        if not delivery.is_test:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
        return "succeeded"
    error = outcome.error or f"The receiver answered HTTP {outcome.status_code}."
    gone = outcome.status_code == 410
    delay = None if (gone or delivery.is_test) else retry_delay(attempts, rng=rng)
    if delay is not None:
        mine.update(**state, next_attempt_at=now + delay, last_error=error)
        return "retry"
    mine.update(
        **state,
        status=DeliveryStatus.FAILED,
        next_attempt_at=None,
        finished_at=now,
        last_error=error,
    )
    if gone:
        endpoint_disable(endpoint=endpoint, reason="it answered 410 Gone.", now=now)
    elif not delivery.is_test:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        endpoint.refresh_from_db(fields=["consecutive_failures"])
        if endpoint.consecutive_failures >= disable_after():
            endpoint_disable(
                endpoint=endpoint,
                reason=f"{endpoint.consecutive_failures} deliveries in a row failed every "
                f"attempt (the last: {error})",
                now=now,
            )
    return "failed"


def delivery_attempt(
    *,
    delivery_id: int,
    now: datetime | None = None,
    trigger: str = AttemptTrigger.AUTO,
    rng: random.Random | None = None,
) -> str:
    """Attempt one delivery if it is due and free; returns what became of it: succeeded,
    retry, failed, skipped (its endpoint is disabled) or taken (gone, not due, done, or
    claimed by another sender)."""
    now = now or timezone.now()
    if not _claim(delivery_id, now):
        return "taken"
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return "taken"
    endpoint = delivery.endpoint
    if not endpoint.is_active and not delivery.is_test:
        WebhookDelivery.objects.filter(pk=delivery.pk, claimed_at=now).update(
            status=DeliveryStatus.FAILED,
            claimed_at=None,
            next_attempt_at=None,
            finished_at=now,
            last_error="Not sent: the endpoint is disabled.",
        )
        return "skipped"
    headers = signed_headers(
        secrets=signing_secrets(endpoint, now=timezone.now()),
        msg_id=delivery.msg_id,
        body=delivery.body,
        # the receiver compares this with its own clock: the real time of sending
        at=timezone.now(),
    )
    outcome = http_post(endpoint.url, body=delivery.body.encode(), headers=headers)
    with transaction.atomic():
        return _record(delivery, outcome, now=now, trigger=trigger, rng=rng)


def deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of pending deliveries whose time has come and that no live sender holds."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_at=None) | Q(claimed_at__lt=now - CLAIM_STALE_AFTER))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def deliveries_prune(
    *, older_than: timedelta = KEEP_FINISHED_FOR, now: datetime | None = None, batch: int = 5000
) -> int:
    """Delete deliveries (with their attempts) finished longer ago than `older_than`, in batches;
    returns how many. Pending ones stay whatever their age."""
    cutoff = (now or timezone.now()) - older_than
    deleted = 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(finished_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        WebhookAttempt.objects.filter(delivery_id__in=ids).delete()
        deleted += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]


def body_json(body: dict) -> str:
    """The exact text that is signed and sent."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
