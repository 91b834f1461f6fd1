"""schemathesis against the project's own OpenAPI schema: every operation, a bounded number of
generated requests with a fixed seed, each sent with a valid key holding every scope and acting
as a sales manager. No answer may be a server error, and every answer must match the schema
(documented status, content type, headers and body)."""

import socket

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from alignment.api_keys import api_key_create
from alignment.models import API_SCOPES
from alignment.webhooks import delivery, ssrf
from alignment.wsgi import application
from tests.factories import LeadFactory

# a few hundred cases in all: this many per operation, the same ones on every run
EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def api_schema(db):
    # as Django's test client does: the end of a request must not close the test's connection
    # (its transaction holds the test data)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Generated webhook endpoints name random hosts: every one resolves to a public documentation
    address, and a delivery is answered 204 without leaving the machine."""
    documentation_address = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.10", 443))]
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: documentation_address)
    monkeypatch.setattr(
        delivery, "http_post", lambda url, *, body, headers: delivery.Outcome(204, 1, "", "")
    )


@pytest.fixture
def bearer(db, sales_manager) -> dict[str, str]:
    cache.clear()  # the throttle budget starts afresh for each operation
    LeadFactory.create_batch(3)
    _, raw = api_key_create(name="schemathesis", scopes=list(API_SCOPES), as_user=sales_manager)
    return {"Authorization": f"Bearer {raw}"}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, bearer):
    # a schema-valid request may still be refused for the data it names (a campaign id that
    # does not exist, a made-up cursor): that is a 400 problem, which the other checks validate
    case.call_and_validate(headers=bearer, excluded_checks=[positive_data_acceptance])
