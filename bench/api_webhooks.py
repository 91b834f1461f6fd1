"""bench/api.py's webhook part, run in its Django process: `count` events handed to the outbox
reaction (one signed delivery each, to an endpoint subscribed to every type), then the
deliveries sent to the local receiver by `senders` threads, as that many Celery workers would."""

import time
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, transaction

from alignment.webhooks.delivery import delivery_attempt
from alignment.webhooks.models import DeliveryStatus, WebhookDelivery
from alignment.webhooks.services import endpoint_create, endpoint_delete, webhooks_reaction
from leads.events import event_record
from leads.models import EventType, Lead


def _attempt(delivery_id: int) -> str:
    try:
        return delivery_attempt(delivery_id=delivery_id)
    finally:
        connection.close()


def deliver(*, url: str, count: int, run: str, senders: int = 4) -> dict[str, float]:
    endpoint, _ = endpoint_create(url=url, event_types=["*"], by=None, description=f"bench {run}")
    lead = Lead.objects.order_by("-id").first()
    try:
        with transaction.atomic():
            events = [
                event_record(
                    type=EventType.LEAD_UPDATED,
                    lead=lead,
                    system="bench",
                    payload={"changes": {"title": ["A", f"B{n}"]}},
                )
                for n in range(count)
            ]
        started = time.perf_counter()
        for event in events:
            webhooks_reaction(event)  # what the outbox dispatcher calls, once per event
        reaction_seconds = time.perf_counter() - started
        ids = list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("id", flat=True))
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=senders) as pool:
            outcomes = list(pool.map(_attempt, ids))
        send_seconds = time.perf_counter() - started
        delivered = WebhookDelivery.objects.filter(
            endpoint=endpoint, status=DeliveryStatus.SUCCEEDED
        ).count()
    finally:
        endpoint_delete(endpoint=endpoint, by=None)
    return {
        "events": count,
        "deliveries": len(ids),
        "delivered": delivered,
        "failed": sum(1 for o in outcomes if o != "succeeded"),
        "reaction_seconds": reaction_seconds,
        "send_seconds": send_seconds,
        "senders": senders,
    }
