import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from alignment.models import WorkerHeartbeat
from alignment.tasks import worker_heartbeat


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_login_then_lands_on_home(client, marketer):
    response = client.post(
        reverse("login"), {"username": "marketer", "password": "pw"}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"<h1>Home</h1>" in response.content


def test_wrong_password_shows_form_error(client, marketer):
    response = client.post(reverse("login"), {"username": "marketer", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_pages_need_login(client, db):
    response = client.get(reverse("leads:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_outsider_sees_403(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("leads:list")).status_code == 403


def test_logout(client, rep):
    client.force_login(rep)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("leads:list")).status_code == 302


@pytest.mark.django_db
def test_health_reports_database_broker_and_missing_heartbeat(client):
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 200
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["worker"] == {"ok": False, "last_beat": None, "age_seconds": None}
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_health_ok_after_heartbeat(client):
    worker_heartbeat()
    body = client.get("/health/").json()
    assert body["checks"]["worker"]["ok"] is True
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_health_stale_heartbeat_is_degraded(client, settings):
    WorkerHeartbeat.objects.create(
        name="worker",
        beat_at=timezone.now() - dt.timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS + 5),
    )
    body = client.get("/health/").json()
    assert body["checks"]["worker"]["ok"] is False
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_health_broker_down_is_503(client, monkeypatch):
    from kombu import Connection

    from alignment.celery import app

    # a real connection attempt to a port where nothing listens
    monkeypatch.setattr(app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0"))
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_api_docs_serve_assets_from_the_app(client, marketer):
    client.force_login(marketer)
    page = client.get("/api/v1/docs/").content.decode()
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page
