"""Webhook subscriptions (create, change, rotate the secret, delete), the outbox reaction that fans
each lead event out to the endpoints subscribed to it, resend and test messages.

Only admins manage webhooks (Action.WEBHOOKS_MANAGE); `by=None` is an API key of its own, which
its `webhooks:manage` scope already allowed. Sending is in alignment.webhooks.delivery; every
delivery is queued after the commit that creates it (and swept by beat if that kick is lost).
"""

import base64
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from rest_framework import serializers

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from alignment.webhooks.delivery import CLAIM_STALE_AFTER, body_json
from alignment.webhooks.models import (
    ALL_EVENTS,
    TEST_EVENT_TYPE,
    AttemptTrigger,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from alignment.webhooks.ssrf import url_check
from alignment.webhooks.tasks import webhook_deliver_task
from leads.api.events import EventSerializer
from leads.api.serializers import LEAD_RELATED, lead_data
from leads.models import EventType, Lead, LeadEvent

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# after a rotation the old secret still signs (a second signature) this long
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
URL_MAX = WebhookEndpoint._meta.get_field("url").max_length
DESCRIPTION_MAX = WebhookEndpoint._meta.get_field("description").max_length
EVENT_TYPES = tuple(EventType.values)

_datetime = serializers.DateTimeField()


def secret_generate() -> str:
    """`whsec_` + base64 of 32 random bytes, as the Standard Webhooks specification has it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _require(by: User | None) -> None:
    if by is not None:
        require(by, Action.WEBHOOKS_MANAGE)


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise DomainError("Give the endpoint a URL.", field="url")
    if len(url) > URL_MAX:
        raise DomainError(f"A URL has at most {URL_MAX} characters.", field="url")
    url_check(url)
    return url


def _clean_event_types(event_types) -> list[str]:
    if not isinstance(event_types, list | tuple) or not event_types:
        raise DomainError(
            'Subscribe to at least one event type, or to ["*"] for every type.',
            field="event_types",
        )
    if ALL_EVENTS in event_types:
        return [ALL_EVENTS]
    unknown = sorted({str(t) for t in event_types} - set(EVENT_TYPES))
    if unknown:
        raise DomainError(
            f"Unknown event type(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}, "
            "or * for all.",
            field="event_types",
        )
    return [t for t in EVENT_TYPES if t in set(event_types)]


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise DomainError(
            f"A description has at most {DESCRIPTION_MAX} characters.", field="description"
        )
    return description


@transaction.atomic
def endpoint_create(
    *,
    url: str,
    event_types: list[str],
    description: str = "",
    is_active: bool = True,
    by: User | None,
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its secret (shown to the admin once, at creation)."""
    _require(by)
    endpoint = WebhookEndpoint.objects.create(
        url=_clean_url(url),
        event_types=_clean_event_types(event_types),
        description=_clean_description(description),
        secret=secret_generate(),
        is_active=bool(is_active),
    )
    return endpoint, endpoint.secret


@transaction.atomic
def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    by: User | None,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given (None: unchanged). Enabling a disabled endpoint clears its failures."""
    _require(by)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    changed: list[str] = []
    if url is not None and url.strip() != endpoint.url:
        endpoint.url = _clean_url(url)
        changed.append("url")
    if event_types is not None:
        endpoint.event_types = _clean_event_types(event_types)
        changed.append("event_types")
    if description is not None:
        endpoint.description = _clean_description(description)
        changed.append("description")
    if is_active is not None and bool(is_active) != endpoint.is_active:
        endpoint.is_active = bool(is_active)
        if endpoint.is_active:
            endpoint.disabled_at, endpoint.disabled_reason = None, ""
            endpoint.consecutive_failures = 0
        else:
            endpoint.disabled_at, endpoint.disabled_reason = timezone.now(), "Disabled by hand."
        changed += ["is_active", "disabled_at", "disabled_reason", "consecutive_failures"]
    if changed:
        endpoint.updated_at = timezone.now()
        endpoint.save(update_fields=[*changed, "updated_at"])
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, by: User | None, now: datetime | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one signs too for PREVIOUS_SECRET_GRACE, so receivers can switch."""
    _require(by)
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + PREVIOUS_SECRET_GRACE
    endpoint.secret = secret_generate()
    endpoint.updated_at = now
    endpoint.save(
        update_fields=["secret", "previous_secret", "previous_secret_until", "updated_at"]
    )
    return endpoint, endpoint.secret


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, by: User | None) -> None:
    """Delete the endpoint with its delivery log."""
    _require(by)
    endpoint.delete()


# --- queueing sends after commit ---------------------------------------------------------------


def _kick(delivery_ids: list[int], trigger: str) -> None:
    for delivery_id in delivery_ids:
        try:
            webhook_deliver_task.apply_async(args=[delivery_id, trigger], retry=False)
        except Exception as error:  # the broker is down: the beat sweep sends them
            logger.warning("Webhooks: could not queue delivery %s (%s).", delivery_id, error)
            return


def _kick_after_commit(delivery_ids: list[int], trigger: str = AttemptTrigger.AUTO) -> None:
    if not delivery_ids:
        return
    if not connection.in_atomic_block:
        _kick(delivery_ids, trigger)
        return
    transaction.on_commit(lambda: _kick(delivery_ids, trigger), robust=True)


# --- the message -------------------------------------------------------------------------------


def event_message(event: LeadEvent) -> dict:
    """The body of an event's webhook: its id (the `webhook-id`), type, time, the event as the
    event feed reads it, and the lead as it is now (null for an event about no lead, or a lead
    since merged away)."""
    lead = None
    if event.lead_id is not None:
        lead = Lead.objects.select_related(*LEAD_RELATED).filter(pk=event.lead_id).first()
    return {
        "id": f"evt_{event.pk}",
        "type": event.type,
        "timestamp": _datetime.to_representation(event.occurred_at),
        "data": {
            "event": EventSerializer(event).data,
            "lead": lead_data(lead) if lead else None,
        },
    }


def webhook_event_types() -> set[str]:
    """The outbox gate of webhooks_reaction: the event types some active endpoint subscribes to
    ("*" among them when one takes every type). With no endpoint, events queue nothing."""
    wanted: set[str] = set()
    for types in (
        WebhookEndpoint.objects.filter(is_active=True)
        .order_by()
        .values_list("event_types", flat=True)
    ):
        wanted.update(types)
    return wanted


def webhooks_reaction(event: LeadEvent) -> None:
    """Outbox reaction (every event type): one delivery per active endpoint subscribed to the
    event's type, queued after commit. Run again for the same event, it adds none."""
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(is_active=True) if e.subscribes_to(event.type)
    ]
    if not endpoints:
        return
    already = set(
        WebhookDelivery.objects.filter(event_id=event.pk).values_list("endpoint_id", flat=True)
    )
    endpoints = [e for e in endpoints if e.pk not in already]
    if not endpoints:
        return
    message = event_message(event)
    body = body_json(message)
    now = timezone.now()
    created = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint,
                event_id=event.pk,
                msg_id=message["id"],
                event_type=event.type,
                body=body,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        ]
    )
    _kick_after_commit([d.pk for d in created])


@transaction.atomic
def endpoint_send_test(
    *, endpoint: WebhookEndpoint, by: User | None, now: datetime | None = None
) -> WebhookDelivery:
    """A `webhook.test` message, sent once (no retries, not counted towards disabling), also to
    a disabled endpoint, so that a fixed receiver can be checked before enabling it again."""
    _require(by)
    now = now or timezone.now()
    msg_id = f"test_{uuid.uuid4().hex}"
    message = {
        "id": msg_id,
        "type": TEST_EVENT_TYPE,
        "timestamp": _datetime.to_representation(now),
        "data": {"message": "A test message from Lead pipeline.", "endpoint_id": endpoint.pk},
    }
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        msg_id=msg_id,
        event_type=TEST_EVENT_TYPE,
        body=body_json(message),
        next_attempt_at=now,
        created_at=now,
    )
    _kick_after_commit([delivery.pk], AttemptTrigger.TEST)
    return delivery


@transaction.atomic
def delivery_resend(
    *, delivery: WebhookDelivery, by: User | None, now: datetime | None = None
) -> WebhookDelivery:
    """Send a delivery again now (same body, same `webhook-id`), with a fresh round of retries."""
    _require(by)
    now = now or timezone.now()
    delivery = (
        WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    )
    if not delivery.endpoint.is_active and not delivery.is_test:
        raise DomainError("The endpoint is disabled: enable it before resending.")
    if delivery.claimed_at is not None and delivery.claimed_at >= now - CLAIM_STALE_AFTER:
        raise DomainError("This delivery is being sent right now; try again in a moment.")
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.finished_at = None
    delivery.claimed_at = None
    delivery.save(
        update_fields=["status", "attempts", "next_attempt_at", "finished_at", "claimed_at"]
    )
    _kick_after_commit([delivery.pk], AttemptTrigger.RESEND)
    return delivery
