import os
import socket

import pytest

from alignment.celery import app as celery_app
from alignment.models import Role
from leads.models import EventType, LeadEvent
from tests.factories import RepFactory, UserFactory


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    """Tasks run in-process in ordinary tests; tests marked `integration` use a real worker."""
    # settings.py defines CELERY_TASK_ALWAYS_EAGER, so the namespaced key is the one Celery reads
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    assert celery_app.conf.task_always_eager
    yield


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    # factories set a password for every user; the default hasher is slow on purpose
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MEDIA_ROOT = str(tmp_path / "media")


# Rows that data migrations write: (migration module, function, model that holds them).
MIGRATION_DATA = [
    ("leads.migrations.0002_default_reasons", "add_reasons", "leads.Reason"),
    ("leads.migrations.0012_feedback_loops", "add_won_reasons", "leads.Reason"),
    ("leads.migrations.0004_default_scoring_model", "add_default_model", "leads.ScoringModel"),
    ("sla.migrations.0002_installed_agreement", "add_installed_agreement", "sla.Agreement"),
]


@pytest.fixture(autouse=True)
def _migration_data(request):
    """Transactional tests (live server, real worker) truncate every table when they end, and with
    it the rows data migrations wrote; put those back for whichever test comes next."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not names & {"db", "transactional_db", "live_server"}:
        return
    transactional = names & {"transactional_db", "live_server"} or (
        marker is not None and marker.kwargs.get("transaction")
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    import importlib

    from django.apps import apps

    # emptied tables first: two migrations may fill one table (the reason codes)
    empty = {model for _, _, model in MIGRATION_DATA if not apps.get_model(model).objects.exists()}
    for module, function, model in MIGRATION_DATA:
        if model in empty:
            getattr(importlib.import_module(module), function)(apps, None)


class _EventLeads:
    """The lead ids of every event of one type so far, in order; compares like a list."""

    def __init__(self, type: str):
        self.type = type

    def ids(self) -> list[int]:
        return list(
            LeadEvent.objects.filter(type=self.type)
            .order_by("id")
            .values_list("lead_id", flat=True)
        )

    def __eq__(self, other) -> bool:
        return self.ids() == list(other)

    def __len__(self) -> int:
        return len(self.ids())

    def __iter__(self):
        return iter(self.ids())

    def __repr__(self) -> str:
        return repr(self.ids())


@pytest.fixture
def mql_events(db):
    """The leads that became MQLs, as the event log tells (one lead.mql event per crossing)."""
    return _EventLeads(EventType.LEAD_MQL)


@pytest.fixture
def marketer(db):
    return UserFactory(username="marketer", role=Role.MARKETER)


@pytest.fixture
def marketing_manager(db):
    return UserFactory(username="marketing_manager", role=Role.MARKETING_MANAGER)


@pytest.fixture
def rep(db):
    return RepFactory(username="rep", capacity=50)


@pytest.fixture
def other_rep(db):
    return RepFactory(username="other_rep", capacity=50)


@pytest.fixture
def sales_manager(db):
    return UserFactory(username="sales_manager", role=Role.SALES_MANAGER)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", role=Role.ADMIN, is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db):
    """Logged in, but on neither team: may read nothing and change nothing."""
    return UserFactory(username="outsider", role="")


@pytest.fixture
def people(marketer, marketing_manager, rep, sales_manager, admin_user, outsider):
    return {
        "marketer": marketer,
        "marketing_manager": marketing_manager,
        "rep": rep,
        "sales_manager": sales_manager,
        "admin": admin_user,
        "outsider": outsider,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collector:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on localhost; Django's SMTP backend sends to it."""
    from aiosmtpd.controller import Controller

    collector = _Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield collector
    finally:
        controller.stop()


def redis_broker_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith(("redis://", "rediss://")) else None


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """A real `celery worker` process on Redis, reading the test database.

    Skipped unless CELERY_BROKER_URL points at Redis (CI sets it). Each test gets its own queue so
    that leftovers of another run are never consumed. Tasks are sent for real (not eagerly)."""
    import subprocess
    import sys
    import time
    import uuid

    from django.db import connection

    broker = redis_broker_url()
    if broker is None:
        pytest.skip("Celery integration tests need CELERY_BROKER_URL=redis://... (CI sets it)")
    if connection.vendor == "sqlite":
        pytest.skip("a worker process cannot share the in-memory SQLite test database")
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        # what the worker itself queues (the outbox's reactions do) stays on the test's queue
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_URL": f"smtp://{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend")
        else "locmem://",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "alignment",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # settings.py defines CELERY_TASK_DEFAULT_QUEUE, so the namespaced key is the one Celery reads
    previous = celery_app.conf.CELERY_TASK_DEFAULT_QUEUE
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = queue
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"celery worker exited early:\n{proc.stdout.read()}")
            replies = celery_app.control.ping(destination=None, timeout=1.0)
            if any(replies):
                break
        else:
            pytest.fail("celery worker did not answer a ping within 60 s")
        yield proc
    finally:
        celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = previous
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll until predicate() is truthy; returns its value or fails the test after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")
