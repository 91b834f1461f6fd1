import datetime as dt
import io
import re

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import resolve, reverse
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from alignment import api as api_module
from alignment.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from alignment.lib.errors import DomainError
from alignment.models import API_SCOPES, ApiKey

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= set(body)
    return body


# --- services ---------------------------------------------------------------------------------


def test_key_is_stored_only_as_a_hash(admin_user):
    key, raw = api_key_create(name="HubSpot", scopes=["leads:read"], by=admin_user)

    row = ApiKey.objects.values().get(id=key.id)
    assert raw not in str(row)
    assert row["prefix"] == raw[:8]
    assert len(raw) >= 40
    assert key.created_by == admin_user


def test_right_key_authenticates_and_wrong_or_revoked_does_not(admin_user):
    key, raw = api_key_create(name="HubSpot", scopes=["leads:read"])

    assert api_key_authenticate(raw) == key
    assert api_key_authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert api_key_authenticate(raw[:8]) is None
    assert api_key_authenticate("") is None

    api_key_revoke(key=key, by=admin_user)
    assert key.revoked_at is not None
    assert api_key_authenticate(raw) is None


def test_unknown_or_missing_scopes_and_names_are_refused():
    with pytest.raises(DomainError, match="Unknown scope") as e:
        api_key_create(name="x", scopes=["leads:read", "leads:delete"])
    assert e.value.field == "scopes"
    with pytest.raises(DomainError) as e:
        api_key_create(name="x", scopes=[])
    assert e.value.field == "scopes"
    with pytest.raises(DomainError) as e:
        api_key_create(name="  ", scopes=["leads:read"])
    assert e.value.field == "name"
    assert not ApiKey.objects.exists()


def test_only_an_admin_creates_or_revokes_keys(marketing_manager, admin_user):
    with pytest.raises(DomainError, match="may not"):
        api_key_create(name="x", scopes=["leads:read"], by=marketing_manager)
    key, _ = api_key_create(name="x", scopes=["leads:read"], by=admin_user)
    with pytest.raises(DomainError, match="may not"):
        api_key_revoke(key=key, by=marketing_manager)
    key.refresh_from_db()
    assert key.revoked_at is None


def test_last_used_is_written_at_most_once_a_minute(django_assert_num_queries):
    key, raw = api_key_create(name="x", scopes=["leads:read"])
    assert key.last_used_at is None

    api_key_authenticate(raw)
    first = ApiKey.objects.get(id=key.id).last_used_at
    assert first is not None

    with django_assert_num_queries(1):  # the lookup only, no write
        api_key_authenticate(raw)
    assert ApiKey.objects.get(id=key.id).last_used_at == first

    ApiKey.objects.filter(id=key.id).update(last_used_at=first - dt.timedelta(seconds=61))
    api_key_authenticate(raw)
    assert ApiKey.objects.get(id=key.id).last_used_at > first


# --- authentication, scopes, roles ------------------------------------------------------------


def test_me_describes_the_key_and_its_acting_user(rep):
    _, raw = api_key_create(name="Salesforce", scopes=["leads:read", "sla:read"], as_user=rep)

    response = bearer(raw).get(ME)

    assert response.status_code == 200
    body = response.json()
    assert body["authentication"] == "api_key"
    assert body["key"]["name"] == "Salesforce"
    assert body["key"]["scopes"] == ["leads:read", "sla:read"]
    assert body["user"] == {"username": "rep", "role": "sales_rep"}


def test_a_key_acting_as_a_user_is_held_to_that_users_role(rep, marketer):
    _, as_rep = api_key_create(name="a", scopes=list(API_SCOPES), as_user=rep)
    _, as_marketer = api_key_create(name="b", scopes=list(API_SCOPES), as_user=marketer)
    _, own = api_key_create(name="c", scopes=list(API_SCOPES))

    rep_actions = bearer(as_rep).get(ME).json()["actions"]
    marketer_actions = bearer(as_marketer).get(ME).json()["actions"]
    own_actions = bearer(own).get(ME).json()["actions"]

    assert "lead.decide" in rep_actions and "lead.qualify" not in rep_actions
    assert "lead.qualify" in marketer_actions and "lead.decide" not in marketer_actions
    # a key of its own is held to its scopes only, but cannot sign off in anybody's name
    assert "lead.decide" in own_actions and "lead.qualify" in own_actions
    assert "scoring.approve" not in own_actions


def test_a_key_without_the_scope_gets_403(monkeypatch):
    _, raw = api_key_create(name="x", scopes=["leads:read"])
    monkeypatch.setattr(api_module.MeView, "required_scopes", ("kpis:read",), raising=False)

    body = assert_problem(bearer(raw).get(ME), 403)

    assert "kpis:read" in body["detail"]
    assert body["code"] == "permission_denied"


def test_a_session_is_held_to_the_role_not_to_scopes(client, rep, monkeypatch):
    monkeypatch.setattr(api_module.MeView, "required_scopes", ("kpis:read",), raising=False)
    client.force_login(rep)

    body = client.get(ME).json()

    assert body["authentication"] == "session"
    assert body["key"] is None
    assert body["user"]["role"] == "sales_rep"
    assert "lead.qualify" not in body["actions"]


def test_a_session_post_needs_the_csrf_token(rep):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(rep)

    body = assert_problem(client.post(ME), 403)

    assert "CSRF" in body["detail"]


@pytest.mark.parametrize("header", ["Bearer wrongwrongwrongwrong", "Bearer", "Bearer a b"])
def test_a_wrong_key_gets_401_problem_with_www_authenticate(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(ME)

    body = assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    assert body["instance"] == ME


def test_a_revoked_key_gets_401(admin_user):
    key, raw = api_key_create(name="x", scopes=["leads:read"])
    api_key_revoke(key=key, by=admin_user)

    response = bearer(raw).get(ME)

    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"


def test_no_credentials_get_401_problem():
    response = APIClient().get(ME)

    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"


# --- error shape ------------------------------------------------------------------------------


def test_an_unknown_api_url_is_a_404_problem_not_a_page(settings):
    settings.DEBUG = True  # Django's debug 404 would list every URL pattern

    for url in ["/api/v1/nothing-here/", "/api/v1/leads/42/nothing/", "/api/v2/"]:
        response = APIClient().get(url, HTTP_ACCEPT="text/html")
        body = assert_problem(response, 404)
        assert body["instance"] == url


def test_a_missing_trailing_slash_is_a_404_that_says_so():
    body = assert_problem(APIClient().get("/api/v1/me"), 404)

    assert "/api/v1/me/" in body["detail"]
    assert "did you mean" not in APIClient().get("/api/v1/nothing").json()["detail"]


def test_a_wrong_method_is_a_405_problem():
    _, raw = api_key_create(name="x", scopes=["leads:read"])

    body = assert_problem(bearer(raw).delete(ME), 405)

    assert "DELETE" in body["detail"]


def test_errors_are_json_even_when_a_browser_asks_for_html():
    response = APIClient().get(ME, HTTP_ACCEPT="text/html")

    assert_problem(response, 401)


def test_an_unhandled_error_is_a_500_problem(monkeypatch):
    _, raw = api_key_create(name="x", scopes=["leads:read"])

    def boom(self, request):
        raise RuntimeError("bug")

    monkeypatch.setattr(api_module.MeView, "get", boom)

    body = assert_problem(bearer(raw).get(ME), 500)

    assert "bug" not in body["detail"]


def test_domain_and_validation_errors_carry_field_errors():
    context = {"request": None}
    body = api_module.exception_handler(DomainError("Too long.", field="name"), context).data
    assert body["status"] == 400
    assert body["errors"] == {"name": ["Too long."]}

    nested = ValidationError({"items": [{}, {"email": ["Enter a valid email."]}]})
    body = api_module.exception_handler(nested, context).data
    assert body["errors"] == {"items.1.email": ["Enter a valid email."]}


def test_the_index_lists_schema_docs_and_endpoints():
    response = APIClient().get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    assert body["schema"].endswith("/api/v1/schema/")
    assert body["docs"].endswith("/api/v1/docs/")
    assert body["endpoints"]["me"].endswith(ME)
    # every named endpoint is listed, and each listed URL is one the API answers
    assert {"me", "leads", "lead", "events"} <= set(body["endpoints"])
    for name, url in body["endpoints"].items():
        path = re.sub(r"\{\w+\}", "1", url.removeprefix("http://testserver"))
        assert resolve(path).url_name == f"api-{name}", url


def test_throttle_answers_429_with_retry_after(settings):
    settings.API_THROTTLE_RATE = "2/min"
    _, raw = api_key_create(name="x", scopes=["leads:read"])
    _, other = api_key_create(name="y", scopes=["leads:read"])
    client = bearer(raw)

    assert client.get(ME).status_code == 200
    assert client.get(ME).status_code == 200
    response = client.get(ME)

    body = assert_problem(response, 429)
    assert int(response["Retry-After"]) > 0
    assert body["code"] == "throttled"
    # the budget is per key
    assert bearer(other).get(ME).status_code == 200


def test_the_schema_generates_without_warnings_and_documents_me():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache
    assert "/api/v1/me/" in schema["paths"]
    assert "examples" in str(schema["paths"]["/api/v1/me/"]["get"]["responses"]["200"])
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_the_schema_endpoint_still_serves():
    response = APIClient().get("/api/v1/schema/")

    assert response.status_code == 200


# --- command ----------------------------------------------------------------------------------


def test_command_prints_the_key_alone_on_the_last_line(rep):
    out = io.StringIO()
    call_command(
        "create_api_key",
        "HubSpot sync",
        scope=["leads:read", "leads:write"],
        as_user="rep",
        stdout=out,
    )

    lines = out.getvalue().strip().splitlines()
    raw = lines[-1]
    assert " " not in raw
    key = api_key_authenticate(raw)
    assert key is not None and key.name == "HubSpot sync"
    assert key.scopes == ["leads:read", "leads:write"]
    assert key.as_user == rep
    assert "HubSpot sync" in out.getvalue()


def test_command_refuses_unknown_scope_or_user():
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command(
            "create_api_key", "x", scope=["leads:read", "leads:nuke"], stdout=io.StringIO()
        )
    with pytest.raises(CommandError, match="No user named"):
        call_command(
            "create_api_key", "x", scope=["leads:read"], as_user="nobody", stdout=io.StringIO()
        )
    assert not ApiKey.objects.exists()


def test_command_line_parsing_of_repeated_scopes():
    out = io.StringIO()
    call_command("create_api_key", "x", "--scope", "sla:read", "--scope", "kpis:read", stdout=out)

    assert ApiKey.objects.get().scopes == ["sla:read", "kpis:read"]


# --- admin page -------------------------------------------------------------------------------


def test_admin_creates_a_key_and_sees_it_once(client, admin_user, rep):
    client.force_login(admin_user)

    response = client.post(
        reverse("api_keys"),
        {"name": "Pardot", "scopes": ["leads:read", "touchpoints:write"], "as_user": rep.pk},
    )

    assert response.status_code == 200
    raw = response.context["created_key"]
    assert raw and raw.encode() in response.content
    assert b"will not be shown again" in response.content
    key = api_key_authenticate(raw)
    assert key.scopes == ["leads:read", "touchpoints:write"]
    assert key.as_user == rep and key.created_by == admin_user

    again = client.get(reverse("api_keys"))
    assert raw.encode() not in again.content
    assert key.prefix.encode() in again.content


def test_the_page_shows_field_errors(client, admin_user):
    client.force_login(admin_user)

    response = client.post(reverse("api_keys"), {"name": "Pardot", "scopes": []})

    assert response.status_code == 200
    assert response.context["created_key"] is None
    assert response.context["form"].errors["scopes"]
    assert not ApiKey.objects.exists()


def test_admin_revokes_after_confirming(client, admin_user):
    key, raw = api_key_create(name="Old", scopes=["leads:read"])
    client.force_login(admin_user)
    url = reverse("api_key_revoke", args=[key.pk])

    confirm = client.get(url)
    assert confirm.status_code == 200 and b"cannot be undone" in confirm.content
    key.refresh_from_db()
    assert key.revoked_at is None

    response = client.post(url)
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(raw) is None


@pytest.mark.parametrize("who", ["marketing_manager", "sales_manager", "rep", "outsider"])
def test_only_admins_reach_the_keys_page(client, people, who):
    key, _ = api_key_create(name="x", scopes=["leads:read"])
    client.force_login(people[who])

    assert client.get(reverse("api_keys")).status_code == 403
    assert (
        client.post(reverse("api_keys"), {"name": "y", "scopes": ["leads:read"]}).status_code == 403
    )
    assert client.post(reverse("api_key_revoke", args=[key.pk])).status_code == 403
    assert ApiKey.objects.count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_keys_page_needs_a_login(client):
    response = client.get(reverse("api_keys"))

    assert response.status_code == 302


def test_revoked_keys_are_listed_as_revoked(client, admin_user):
    key, _ = api_key_create(name="Old", scopes=["leads:read"])
    ApiKey.objects.filter(id=key.id).update(revoked_at=timezone.now())
    client.force_login(admin_user)

    assert b"revoked" in client.get(reverse("api_keys")).content
