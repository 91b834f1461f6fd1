import pytest
from django.test import Client

from alignment.models import WorkerHeartbeat
from alignment.tasks import worker_heartbeat
from tests.conftest import wait_for


@pytest.mark.integration
def test_real_worker_writes_heartbeat_seen_by_health(celery_worker_process):
    assert not WorkerHeartbeat.objects.exists()
    worker_heartbeat.delay()
    beat = wait_for(lambda: WorkerHeartbeat.objects.filter(name="worker").first())
    assert beat.beat_at is not None
    body = Client().get("/health/").json()
    assert body["checks"]["broker"]["transport"] == "redis"
    assert body["checks"]["worker"]["ok"] is True


@pytest.mark.django_db
def test_heartbeat_task_twice_keeps_one_row():
    worker_heartbeat()
    worker_heartbeat()
    assert WorkerHeartbeat.objects.count() == 1
