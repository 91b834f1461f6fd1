"""The REST defaults (alignment.api_defaults): a limit or offset that is not a whole number is a
400 problem, not the first page; OPTIONS on an action endpoint without a serializer answers
instead of failing; a boolean filter refuses "null"."""

import pytest
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from alignment.models import API_SCOPES

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(sales_manager):
    _, raw = api_key_create(name="defaults", scopes=list(API_SCOPES), as_user=sales_manager)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize(
    "query, field",
    [
        ("offset=null", "offset"),
        ("offset=-1", "offset"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
    ],
)
def test_a_page_parameter_that_is_not_a_whole_number_is_a_400(api, query, field):
    response = api.get(f"/api/v1/sla/agreements/?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_whole_numbers_still_page(api):
    response = api.get("/api/v1/sla/agreements/?limit=1&offset=0")
    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_options_on_an_action_endpoint_answers(api):
    response = api.options("/api/v1/scoring/versions/1/send-back/")
    assert response.status_code == 200
    assert "actions" not in response.json()


def test_a_boolean_filter_refuses_null(api):
    response = api.get("/api/v1/sla/clocks/?running=null")
    assert response.status_code == 400 and "running" in response.json()["errors"]
    assert api.get("/api/v1/sla/clocks/?running=true").status_code == 200


def test_a_lead_text_field_refuses_a_number(api):
    response = api.put(
        "/api/v1/leads/external/crm-1/", {"email": "a@b.example", "industry": 0}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["industry"] == ["Write it as text."]
