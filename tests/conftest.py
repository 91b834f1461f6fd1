import os
import socket

import pytest

from alignment.celery import app as celery_app
from alignment.models import Role
from tests.factories import RepFactory, UserFactory


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    """Tasks run in-process in ordinary tests; tests marked `integration` use a real worker."""
    celery_app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield


@pytest.fixture(autouse=True)
def _locmem_email(settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MEDIA_ROOT = str(tmp_path / "media")


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
