"""Every scope against every operation, read from the schema's x-required-scopes: a key that
lacks any one of an operation's scopes gets a 403 problem and no data, and changes nothing; a key
with exactly those scopes gets past the scope check."""

import re

import pytest
from django.apps import apps
from django.core.cache import cache
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from alignment.models import API_SCOPES

pytestmark = pytest.mark.django_db

# need no scope: what the API offers (its index and schema) and who the caller is
OPEN_OPERATIONS = {("get", "/api/v1/"), ("get", "/api/v1/me/"), ("get", "/api/v1/schema/")}
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "errors"}


def _operations() -> list[tuple[str, str, tuple[str, ...]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((method, path, tuple(operation.get("x-required-scopes", ()))))
    return sorted(found)


OPERATIONS = _operations()


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label in ("leads", "sla", "kpis", "content")
    }


def _call(method: str, path: str, scopes: list[str]):
    cache.clear()
    _, raw = api_key_create(name="matrix", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = re.sub(r"\{[^}]+\}", "1", path)
    return getattr(client, method)(url, {}, format="json")


def test_the_schema_lists_the_api_and_every_operation_names_its_scopes():
    assert len(OPERATIONS) >= 2
    for method, path, scopes in OPERATIONS:
        if (method, path) in OPEN_OPERATIONS:
            assert scopes == (), (method, path)
            continue
        assert scopes, f"{method.upper()} {path} declares no scope"
        assert set(scopes) <= set(API_SCOPES), (method, path, scopes)


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [op for op in OPERATIONS if op[2]],
    ids=[f"{m.upper()} {p}" for m, p, s in OPERATIONS if s],
)
def test_a_key_without_one_of_the_scopes_gets_403_and_changes_nothing(method, path, scopes):
    before = _row_counts()
    for lacking in scopes:
        others = [s for s in API_SCOPES if s != lacking]
        response = _call(method, path, others)
        assert response.status_code == 403, (lacking, response.content[:300])
        body = response.json()
        assert set(body) <= PROBLEM_KEYS
        assert lacking in body["detail"]
    assert _row_counts() == before


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [op for op in OPERATIONS if op[2]],
    ids=[f"{m.upper()} {p}" for m, p, s in OPERATIONS if s],
)
def test_a_key_with_exactly_the_scopes_passes_the_scope_check(method, path, scopes):
    response = _call(method, path, list(scopes))
    if response.status_code == 403:
        assert "lacks the scope" not in response.json()["detail"]
    assert response.status_code < 500
