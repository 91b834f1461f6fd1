from celery import shared_task
from django.utils import timezone

from alignment.models import WorkerHeartbeat


@shared_task(ignore_result=True)
def worker_heartbeat(name: str = "worker") -> None:
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})
