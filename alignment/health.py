"""/health/: the database, the broker and the worker heartbeat, as JSON for a load balancer."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from alignment.celery import app as celery_app
from alignment.models import WorkerHeartbeat


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


@never_cache
@require_GET
def health(request):
    now = timezone.now()
    checks = {"database": _database(), "broker": _broker()}
    checks["worker"] = _worker(now) if checks["database"]["ok"] else {"ok": False}
    serving = checks["database"]["ok"] and checks["broker"]["ok"]
    # a stale worker degrades the service (no scoring, no emails) but the site itself still serves
    status = "ok" if serving and checks["worker"]["ok"] else ("degraded" if serving else "down")
    return JsonResponse(
        {"status": status, "time": now.isoformat(), "checks": checks},
        status=200 if serving else 503,
    )
