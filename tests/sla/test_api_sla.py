"""/api/v1/sla/: the agreement in force and its versions, and the SLA clocks with their filters
and cursor pagination, all with `sla:read`."""

from datetime import UTC, datetime, timedelta

import pytest

from alignment.api_keys import api_key_create
from sla import agreements
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.selectors import agreement_active, agreement_summary, calendar_words

# the autouse throttle reset of the key tests: a fresh budget per test
from tests.alignment.test_api_keys import (  # noqa: F401
    _clear_throttle_cache,
    assert_problem,
    bearer,
)
from tests.factories import LeadFactory, RepFactory, UserFactory
from tests.kpis.test_selectors import clock

pytestmark = pytest.mark.django_db

BASE = "/api/v1/sla"
MON = datetime(2026, 11, 16, 9, tzinfo=UTC)


def client(*scopes: str, as_user=None):
    """A client calling with a new key (of its own, or acting as `as_user`)."""
    _, raw = api_key_create(name="crm", scopes=list(scopes), as_user=as_user)
    return bearer(raw)


# --- the agreement ----------------------------------------------------------------------------


def test_the_agreement_in_force_with_its_terms_and_calendar_in_words():
    agreement = agreement_active()

    response = client("sla:read").get(f"{BASE}/agreement/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["label"]) == (agreement.pk, "active", agreement.label)
    assert body["sales"] == {
        "response_hours": float(agreement.response_hours),
        "decision_hours": float(agreement.decision_hours),
        "followup_attempts": agreement.followup_attempts,
        "followup_days": agreement.followup_days,
    }
    assert body["marketing"]["mqls_committed"] == agreement.mqls_committed
    assert body["calendar"]["description"] == calendar_words(agreement.calendar)
    assert body["calendar"]["timezone"] == agreement.calendar["timezone"]
    assert body["in_words"]["calendar"] == agreement_summary(agreement)["calendar"]
    assert body["in_words"]["sales"] == agreement_summary(agreement)["sales"]
    assert "report_recipients" not in body


def test_no_agreement_in_force_is_a_404_problem():
    agreement = agreement_active()
    agreement.status = "retired"
    agreement.save(update_fields=["status"])

    body = assert_problem(client("sla:read").get(f"{BASE}/agreement/"), 404)

    assert body["detail"] == "No agreement is in force."


def test_agreement_versions_newest_first_in_a_fixed_number_of_queries(
    marketing_manager, django_assert_num_queries
):
    api = client("sla:read")
    api.get(f"{BASE}/agreements/")
    with django_assert_num_queries(4) as few:
        api.get(f"{BASE}/agreements/")
    for _ in range(3):
        agreements.agreement_create_draft(by=marketing_manager)
    with django_assert_num_queries(len(few.captured_queries)):
        response = api.get(f"{BASE}/agreements/")

    versions = [row["version"] for row in response.json()["results"]]
    assert versions == sorted(versions, reverse=True) and len(versions) == 4
    drafts = api.get(f"{BASE}/agreements/", {"status": "draft"}).json()["results"]
    assert {row["status"] for row in drafts} == {"draft"} and len(drafts) == 3
    one = api.get(f"{BASE}/agreements/{drafts[0]['id']}/").json()
    assert one["created_by"] == "marketing_manager"
    assert (
        "status" in assert_problem(api.get(f"{BASE}/agreements/", {"status": "x"}), 400)["errors"]
    )
    assert_problem(api.get(f"{BASE}/agreements/999999/"), 404)


# --- clocks -----------------------------------------------------------------------------------


@pytest.fixture
def clocks():
    rita, sam = RepFactory(username="rita"), RepFactory(username="sam")
    a, b, c = LeadFactory(), LeadFactory(), LeadFactory()
    return {
        "a_response": clock(a, rita, ClockKind.RESPONSE, MON, status=ClockStatus.MET, hours=1),
        "a_decision": clock(a, rita, ClockKind.DECISION, MON, status=ClockStatus.PENDING),
        "b_response": clock(
            b, sam, ClockKind.RESPONSE, MON + timedelta(hours=2), status=ClockStatus.BREACHED
        ),
        "c_response": clock(
            c, rita, ClockKind.RESPONSE, MON + timedelta(hours=5), status=ClockStatus.WARNED
        ),
        "rita": rita,
        "lead_a": a,
    }


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_clocks_most_urgent_first(clocks):
    response = client("sla:read").get(f"{BASE}/clocks/")

    assert ids(response) == list(
        SlaClock.objects.order_by("due_at", "id").values_list("id", flat=True)
    )
    row = next(r for r in response.json()["results"] if r["id"] == clocks["a_decision"].pk)
    assert row["owner"] == {"id": clocks["rita"].pk, "username": "rita"}
    assert (row["lead"], row["kind"], row["status"], row["running"]) == (
        clocks["lead_a"].pk,
        "decision",
        "pending",
        True,
    )
    assert row["due_at"] == "2026-11-16T13:00:00Z"


def test_clocks_filter_by_lead_owner_status_kind_running_and_due_time(clocks):
    api = client("sla:read")

    def get(**params):
        return set(ids(api.get(f"{BASE}/clocks/", params)))

    pk = {name: c.pk for name, c in clocks.items() if isinstance(c, SlaClock)}
    assert get(lead=clocks["lead_a"].pk) == {pk["a_response"], pk["a_decision"]}
    assert get(owner=clocks["rita"].pk) == {pk["a_response"], pk["a_decision"], pk["c_response"]}
    assert get(status=["warned", "breached"]) == {pk["b_response"], pk["c_response"]}
    assert get(kind="decision") == {pk["a_decision"]}
    assert get(running="true") == {pk["a_decision"], pk["c_response"]}
    assert get(running="false") == {pk["a_response"], pk["b_response"]}
    assert get(due_before="2026-11-16T15:00:00+01:00") == {pk["a_response"], pk["a_decision"]}
    assert get(due_after="2026-11-16T15:00:00Z") == {pk["b_response"], pk["c_response"]}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("due_before", "2026-11-16T15:00:00"),
        ("due_before", "soon"),
        ("status", "late"),
        ("kind", "lunch"),
        ("lead", "abc"),
        ("running", "perhaps"),
        ("owner", str(2**70)),
        ("cursor", "not-a-cursor"),
    ],
)
def test_a_bad_filter_is_a_400_field_error(clocks, param, value):
    body = assert_problem(client("sla:read").get(f"{BASE}/clocks/", {param: value}), 400)

    assert any(field.split(".")[0] == param for field in body["errors"]), body


def test_a_naive_time_is_refused_not_guessed(clocks):
    body = assert_problem(
        client("sla:read").get(f"{BASE}/clocks/", {"due_before": "2026-11-16T15:00:00"}), 400
    )

    assert "offset" in body["errors"]["due_before"][0]


def test_clock_pages_follow_the_cursor_in_a_fixed_number_of_queries(
    clocks, django_assert_num_queries
):
    api = client("sla:read")
    api.get(f"{BASE}/clocks/")
    seen = []
    url = f"{BASE}/clocks/?page_size=2"
    while url:
        with django_assert_num_queries(2):
            response = api.get(url)
        seen += ids(response)
        url = response.json()["next"]

    assert seen == list(SlaClock.objects.order_by("due_at", "id").values_list("id", flat=True))
    with django_assert_num_queries(2):
        assert len(ids(api.get(f"{BASE}/clocks/?page_size=500"))) == 4


@pytest.mark.parametrize("path", ["/agreement/", "/agreements/", "/agreements/{pk}/", "/clocks/"])
def test_reading_needs_sla_read(clocks, path):
    url = BASE + path.format(pk=agreement_active().pk)

    body = assert_problem(client("scoring:read", "kpis:read", "leads:read").get(url), 403)

    assert "sla:read" in body["detail"]
    assert "results" not in body and "sales" not in body


def test_a_rep_reads_the_clocks_and_someone_without_a_role_does_not(clocks, rep):
    outsider = UserFactory(username="nobody", role="")

    assert client("sla:read", as_user=rep).get(f"{BASE}/clocks/").status_code == 200
    assert_problem(client("sla:read", as_user=outsider).get(f"{BASE}/clocks/"), 403)
