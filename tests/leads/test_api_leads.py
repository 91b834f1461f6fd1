"""The leads API: read one (with its score explanation and SLA clocks), create, change, upsert
by external id; scopes and roles on each."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from leads.intake import lead_intake
from leads.models import EventType, Lead, LeadEvent, MergeRecord, Stage
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.selectors import agreement_active
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads/"


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def client_with(*scopes: str, as_user=None, name: str = "HubSpot") -> APIClient:
    _, raw = api_key_create(name=name, scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def reader(**kwargs) -> APIClient:
    return client_with("leads:read", **kwargs)


def writer(**kwargs) -> APIClient:
    return client_with("leads:read", "leads:write", **kwargs)


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    return body


def events_of(lead: Lead, type: str) -> list[LeadEvent]:
    return list(LeadEvent.objects.filter(lead_id=lead.pk, type=type).order_by("id"))


def snapshot(lead: Lead) -> dict:
    """Everything stored about a lead, to show that a refused request changed nothing."""
    row = Lead.objects.values().get(pk=lead.pk)
    return {**row, "events": LeadEvent.objects.filter(lead_id=lead.pk).count()}


# --- read one ---------------------------------------------------------------------------------


def test_a_lead_reads_with_its_score_explanation_and_sla_clocks(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep, company_size=500)
    started = timezone.now() - timedelta(hours=1)
    SlaClock.objects.create(
        lead=lead,
        kind=ClockKind.RESPONSE,
        agreement=agreement_active(),
        owner=rep,
        status=ClockStatus.PENDING,
        start_event_id=10_001,
        started_at=started,
        warn_at=started + timedelta(hours=3),
        due_at=started + timedelta(hours=4),
    )

    response = reader().get(f"{LEADS}{lead.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == lead.pk and body["email"] == lead.email
    assert body["owner"]["username"] == "rep"
    explanation = body["score_explanation"]
    assert explanation["model"]["name"]
    assert explanation["total"] == explanation["fit"]["score"] + explanation["engagement"]["score"]
    assert set(explanation["mql"]) >= {"qualifies", "total_threshold", "fit_threshold"}
    [clock] = body["sla_clocks"]
    assert clock["kind"] == "response" and clock["status"] == "pending"
    assert clock["owner"]["username"] == "rep"
    assert clock["due_at"].endswith(("Z", "+00:00"))


def test_an_unknown_lead_is_a_404_problem():
    body = assert_problem(reader().get(f"{LEADS}999999/"), 404)
    assert "999999" in body["detail"]


def test_a_merged_lead_is_a_404_that_names_the_survivor():
    survivor = LeadFactory()
    MergeRecord.objects.create(survivor=survivor, merged_lead_id=424242, snapshot={})

    body = assert_problem(reader().get(f"{LEADS}424242/"), 404)

    assert f"merged into lead {survivor.pk}" in body["detail"]


def test_reading_needs_the_scope_and_a_team_role(outsider, rep):
    lead = LeadFactory()
    url = f"{LEADS}{lead.pk}/"

    body = assert_problem(client_with("events:read").get(url), 403)
    assert "leads:read" in body["detail"] and "email" not in body
    assert_problem(reader(as_user=outsider).get(url), 403)
    assert reader(as_user=rep).get(url).status_code == 200


def test_a_lead_reads_by_its_external_id(outsider):
    lead = LeadFactory(external_id="sf-001")

    body = reader().get(f"{LEADS}external/sf-001/").json()

    assert body["id"] == lead.pk and "score_explanation" in body and "sla_clocks" in body
    assert_problem(reader().get(f"{LEADS}external/sf-404/"), 404)
    assert_problem(client_with("events:read").get(f"{LEADS}external/sf-001/"), 403)
    assert_problem(reader(as_user=outsider).get(f"{LEADS}external/sf-001/"), 403)


# --- create -----------------------------------------------------------------------------------


def test_create_makes_the_lead_through_intake_and_says_where_it_is():
    source = SourceFactory(name="Google Ads", key="google_ads")
    campaign = CampaignFactory()

    response = writer(name="HubSpot sync").post(
        LEADS,
        {
            "email": "Jane.Doe@Acme.example",
            "external_id": "hs-1",
            "first_name": "Jane",
            "company_size": 240,
            "source": "Google Ads",
            "campaign": campaign.pk,
            "attributes": {"CRM Segment": "mid"},
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    lead = Lead.objects.get(external_id="hs-1")
    assert response["Location"].endswith(f"/api/v1/leads/{lead.pk}/")
    body = response.json()
    assert body["id"] == lead.pk and body["email"] == "jane.doe@acme.example"
    assert body["source"] == "google_ads" and body["campaign"]["id"] == campaign.pk
    assert lead.source == source and lead.company_size == 240
    assert lead.attributes == {"crm_segment": "mid"}
    [created] = events_of(lead, EventType.LEAD_CREATED)
    assert created.system == "api:HubSpot sync" and created.actor_id is None


def test_a_key_acting_as_a_person_creates_in_their_name(marketer):
    response = writer(as_user=marketer).post(LEADS, {"email": "a@b.example"}, format="json")

    assert response.status_code == 201
    [created] = events_of(Lead.objects.get(email="a@b.example"), EventType.LEAD_CREATED)
    assert created.actor_id == marketer.pk


@pytest.mark.parametrize("by", ["email", "external id"])
def test_creating_a_lead_that_exists_is_a_409_naming_it_and_changes_nothing(by):
    lead = LeadFactory(email="jane@acme.example", external_id="hs-1", first_name="Jane")
    before = snapshot(lead)
    body = (
        {"email": "JANE@acme.example", "first_name": "Janet"}
        if by == "email"
        else {"external_id": "hs-1", "first_name": "Janet"}
    )

    problem = assert_problem(writer().post(LEADS, body, format="json"), 409)

    assert f"lead {lead.pk}" in problem["detail"] and by in problem["detail"]
    assert problem["code"] == "lead_exists"
    assert snapshot(lead) == before


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"first_name": "Jane"}, "email", "email or an external id"),
        ({"email": "a@b.example", "first_name": "x" * 101}, "first_name", "100"),
        ({"email": "a@b.example", "company_size": -1}, "company_size", "0"),
        ({"email": "a@b.example", "company_size": "many"}, "company_size", "integer"),
        ({"email": "a@b.example", "source": "nowhere"}, "source", "no source"),
        ({"email": "a@b.example", "campaign": 999999}, "campaign", "no campaign"),
        ({"email": "a@b.example", "campaign": 10**30}, "campaign", "no campaign"),
        ({"email": "a@b.example", "attributes": [1, 2]}, "attributes", "dictionary"),
        ({"email": "a@b.example", "stage": "mql"}, "stage", "transitions"),
        ({"email": "a@b.example", "owner": 1}, "owner", "reassignment"),
        ({"email": "a@b.example", "score": 99}, "score", "scoring model"),
        ({"email": "a@b.example", "favourite_colour": "red"}, "favourite_colour", "attributes"),
    ],
)
def test_bad_input_is_a_400_field_error_and_creates_nothing(body, field, words):
    problem = assert_problem(writer().post(LEADS, body, format="json"), 400)

    assert words in " ".join(problem["errors"][field])
    assert not Lead.objects.exists()
    assert not LeadEvent.objects.exists()


def test_creating_needs_the_write_scope_and_a_role_that_may(outsider):
    body = {"email": "a@b.example"}

    problem = assert_problem(client_with("leads:read").post(LEADS, body, format="json"), 403)
    assert "leads:write" in problem["detail"]
    problem = assert_problem(writer(as_user=outsider).post(LEADS, body, format="json"), 403)
    assert "lead.create" in problem["detail"]
    assert not Lead.objects.exists()


def test_a_retried_create_with_the_same_idempotency_key_makes_one_lead():
    client = writer()
    body = {"email": "a@b.example", "first_name": "Ann"}

    first = client.post(LEADS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(LEADS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = client.post(
        LEADS, {**body, "first_name": "Bob"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again["Location"] == first["Location"]
    assert Lead.objects.count() == 1
    assert LeadEvent.objects.filter(type=EventType.LEAD_CREATED).count() == 1
    assert assert_problem(other, 422)["code"] == "idempotency_key_reused"
    assert Lead.objects.get().first_name == "Ann"


# --- change -----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent_with_one_event(rep):
    lead = LeadFactory(title="Head of Ops", company_size=100, attributes={"tier": "gold"})
    campaign = CampaignFactory()

    response = writer(as_user=rep).patch(
        f"{LEADS}{lead.pk}/",
        {"title": "VP Ops", "campaign": campaign.pk, "attributes": {"region": "EMEA"}},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == "VP Ops" and body["company_size"] == 100
    assert body["campaign"]["id"] == campaign.pk
    assert body["attributes"] == {"tier": "gold", "region": "EMEA"}
    [updated] = events_of(lead, EventType.LEAD_UPDATED)
    assert set(updated.payload["changes"]) == {"title", "campaign", "attributes"}
    assert updated.actor_id == rep.pk


def test_a_patch_that_changes_nothing_writes_no_event():
    lead = LeadFactory(title="Head of Ops")

    response = writer().patch(f"{LEADS}{lead.pk}/", {"title": "Head of Ops"}, format="json")

    assert response.status_code == 200
    assert events_of(lead, EventType.LEAD_UPDATED) == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"stage": "won"}, "stage", "POST /api/v1/leads/{id}/transitions/"),
        ({"owner": 3}, "owner", "POST /api/v1/leads/{id}/assignment/"),
        ({"score": 10, "title": "CEO"}, "score", "scoring model"),
        ({"grade": "A"}, "grade", "scoring model"),
        ({"email": "new@b.example"}, "email", "identify the lead"),
        ({"external_id": "x"}, "external_id", "identify the lead"),
        ({"company_size": -5}, "company_size", "0"),
        ({"source": "nowhere"}, "source", "no source"),
    ],
)
def test_a_bad_patch_is_a_400_that_says_what_changes_it_and_changes_nothing(body, field, words):
    lead = LeadFactory(title="Head of Ops")
    before = snapshot(lead)

    problem = assert_problem(writer().patch(f"{LEADS}{lead.pk}/", body, format="json"), 400)

    assert words in " ".join(problem["errors"][field])
    assert snapshot(lead) == before


def test_patching_an_unknown_lead_is_a_404():
    assert_problem(writer().patch(f"{LEADS}999999/", {"title": "x"}, format="json"), 404)


def test_patching_needs_the_write_scope_and_a_role_that_may(outsider):
    lead = LeadFactory(title="Head of Ops")
    before = snapshot(lead)
    url = f"{LEADS}{lead.pk}/"

    assert_problem(client_with("leads:read").patch(url, {"title": "x"}, format="json"), 403)
    problem = assert_problem(
        writer(as_user=outsider).patch(url, {"title": "x"}, format="json"), 403
    )
    assert "lead.edit" in problem["detail"]
    assert snapshot(lead) == before


# --- upsert by external id --------------------------------------------------------------------


def test_upsert_creates_then_updates_then_leaves_unchanged():
    client = writer()
    url = f"{LEADS}external/sf-003/"

    created = client.put(url, {"email": "x@y.example", "title": "CTO"}, format="json")
    same = client.put(url, {"title": "CTO"}, format="json")
    changed = client.put(url, {"title": "CEO"}, format="json")

    assert created.status_code == 201 and created.json()["result"] == "created"
    lead = Lead.objects.get(external_id="sf-003")
    assert created["Location"].endswith(f"/api/v1/leads/{lead.pk}/")
    assert created.json()["lead"]["email"] == "x@y.example"
    assert same.status_code == 200 and same.json()["result"] == "unchanged"
    assert changed.status_code == 200 and changed.json()["result"] == "updated"
    assert changed.json()["lead"]["title"] == "CEO"
    assert len(events_of(lead, EventType.LEAD_CREATED)) == 1
    [updated] = events_of(lead, EventType.LEAD_UPDATED)
    assert updated.payload["changes"]["title"] == ["CTO", "CEO"]


def test_upsert_gives_a_lead_found_by_email_its_external_id():
    lead = LeadFactory(email="x@y.example", external_id=None)

    response = writer().put(f"{LEADS}external/sf-9/", {"email": "x@y.example"}, format="json")

    assert response.status_code == 200 and response.json()["result"] == "updated"
    lead.refresh_from_db()
    assert lead.external_id == "sf-9"


def test_upsert_with_the_email_of_a_lead_with_another_external_id_is_a_409():
    lead = LeadFactory(email="x@y.example", external_id="sf-1")
    before = snapshot(lead)

    problem = assert_problem(
        writer().put(f"{LEADS}external/sf-2/", {"email": "x@y.example"}, format="json"), 409
    )

    assert f"lead {lead.pk}" in problem["detail"] and "sf-1" in problem["detail"]
    assert snapshot(lead) == before
    assert not Lead.objects.filter(external_id="sf-2").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"external_id": "other"}, "external_id"),
        ({"stage": "won"}, "stage"),
        ({"email": "bad"}, "email"),
        ({"company_size": -1}, "company_size"),
    ],
)
def test_a_bad_upsert_is_a_400_and_changes_nothing(body, field):
    lead = LeadFactory(external_id="sf-1")
    before = snapshot(lead)

    problem = assert_problem(writer().put(f"{LEADS}external/sf-1/", body, format="json"), 400)

    assert field in problem["errors"]
    assert snapshot(lead) == before


def test_the_body_may_repeat_the_external_id_of_the_url():
    response = writer().put(
        f"{LEADS}external/sf-1/", {"external_id": "sf-1", "email": "a@b.example"}, format="json"
    )
    assert response.status_code == 201


def test_upserting_needs_the_write_scope_and_a_role_that_may(outsider, marketer):
    url = f"{LEADS}external/sf-1/"

    assert_problem(client_with("leads:read").put(url, {"title": "x"}, format="json"), 403)
    assert_problem(writer(as_user=outsider).put(url, {"title": "x"}, format="json"), 403)
    assert not Lead.objects.exists()
    response = writer(as_user=marketer).put(url, {"title": "x"}, format="json")
    assert response.status_code == 201
    [created] = events_of(Lead.objects.get(), EventType.LEAD_CREATED)
    assert created.actor_id == marketer.pk


def test_an_intake_elsewhere_and_the_api_agree_on_the_lead(marketer):
    result = lead_intake(data={"email": "a@b.example", "title": "CTO"}, by=marketer)

    body = reader().get(f"{LEADS}{result.lead.pk}/").json()

    assert body["title"] == "CTO" and body["score"] == result.lead.score


def test_the_write_endpoints_take_json_only():
    response = writer().post(LEADS, {"email": "a@b.example"}, format="multipart")

    assert_problem(response, 415)
    assert not Lead.objects.exists()


@pytest.mark.parametrize("url", [LEADS, f"{LEADS}1/", f"{LEADS}external/sf-1/"])
def test_options_describes_the_endpoint_without_an_error(url):
    LeadFactory(external_id="sf-1")
    assert writer().options(url).status_code == 200


def test_reading_one_lead_costs_a_fixed_number_of_queries(rep, django_assert_num_queries):
    lead = LeadFactory(owner=rep, source=SourceFactory(), campaign=CampaignFactory())
    api = reader()
    api.get(f"{LEADS}{lead.pk}/")  # the key's last-used time is written once a minute

    # the key, the lead with its relations, the active scoring version, the touchpoints the
    # explanation reads, the clocks
    with django_assert_num_queries(5):
        assert api.get(f"{LEADS}{lead.pk}/").status_code == 200


def test_the_dashboards_session_lists_and_creates_as_the_person(marketer):
    session = APIClient()
    session.force_login(marketer)

    created = session.post(LEADS, {"email": "a@b.example"}, format="json")

    assert created.status_code == 201
    assert [r["email"] for r in session.get(LEADS).json()["results"]] == ["a@b.example"]
    [event] = events_of(Lead.objects.get(), EventType.LEAD_CREATED)
    assert event.actor_id == marketer.pk and event.system == ""
