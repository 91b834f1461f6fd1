from celery import shared_task
from django.utils import timezone

from alignment.idempotency import idempotent_prune
from alignment.models import WorkerHeartbeat

# defined beside notify(), which queues it after commit; imported here for autodiscovery
from alignment.notifications import notifications_send_task  # noqa: F401  (notifications_send)

# the webhook deliveries, their retry sweep and their pruning, for the same reason
from alignment.webhooks.tasks import (  # noqa: F401
    webhook_deliver_task,
    webhooks_prune_task,
    webhooks_retry_due_task,
)


@shared_task(ignore_result=True)
def worker_heartbeat(name: str = "worker") -> None:
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})


@shared_task(name="alignment.idempotency_prune", ignore_result=True)
def idempotency_prune_task() -> None:
    idempotent_prune()
