"""/health/: the database, the broker, the worker heartbeat and the outbox backlog, as JSON for a
load balancer and a monitor."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from alignment.celery import app as celery_app
from alignment.models import WorkerHeartbeat
from leads.events import outbox_backlog


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down", which is what we report
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "vendor": connection.vendor}


def _broker() -> dict:
    transport = settings.CELERY_BROKER_URL.split("://", 1)[0]
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return {"ok": False, "transport": transport, "error": str(exc)[:200]}
    return {"ok": True, "transport": transport}


def _worker(now) -> dict:
    try:
        beat = (
            WorkerHeartbeat.objects.filter(name="worker").values_list("beat_at", flat=True).first()
        )
    except Exception as exc:
        return {"ok": False, "error": str(exc)[:200]}
    if beat is None:
        return {"ok": False, "last_beat": None, "age_seconds": None}
    age = (now - beat).total_seconds()
    return {
        "ok": age <= settings.HEARTBEAT_STALE_SECONDS,
        "last_beat": beat.isoformat(),
        "age_seconds": round(age, 1),
    }


def _outbox(now) -> dict:
    try:
        backlog = outbox_backlog(now=now)
    except Exception as exc:
        return {"ok": False, "error": str(exc)[:200]}
    oldest = backlog["oldest_age_seconds"]
    # reactions (emails, clocks, webhooks) that wait for minutes mean no worker dispatches them
    backlog["ok"] = (oldest is None or oldest <= settings.OUTBOX_STALE_SECONDS) and not backlog[
        "failed"
    ]
    return backlog


@never_cache
@require_GET
def health(request):
    now = timezone.now()
    checks = {"database": _database(), "broker": _broker()}
    checks["worker"] = _worker(now) if checks["database"]["ok"] else {"ok": False}
    checks["outbox"] = _outbox(now) if checks["database"]["ok"] else {"ok": False}
    serving = checks["database"]["ok"] and checks["broker"]["ok"]
    # a stale worker or a stuck outbox degrades the service (no emails, no clocks) but the site
    # itself still serves
    healthy = checks["worker"]["ok"] and checks["outbox"]["ok"]
    status = "ok" if serving and healthy else ("degraded" if serving else "down")
    return JsonResponse(
        {"status": status, "time": now.isoformat(), "checks": checks},
        status=200 if serving else 503,
    )
