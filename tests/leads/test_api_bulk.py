"""POST /api/v1/leads/bulk/: per-item answers, limits, errors that change nothing, the same rows,
events and scores as lead_intake one by one, idempotent replay, scopes and roles, query counts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from leads.importing import upsert
from leads.importing.rowsql import rows_insert
from leads.intake import lead_intake
from leads.models import EventType, Lead, LeadEvent, Stage, Touchpoint
from leads.services import touchpoint_record
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/leads/bulk/"
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
# what differs between two copies of the same data: ids, keys and what points at rows
COPY_FIELDS_IGNORED = {"id", "email", "external_id", "campaign", "utm_campaign"}
PAYLOAD_IDS = {
    "touchpoint_id",
    "stage_change_id",
    "email",
    "external_id",
    "assignment_id",
    "campaign",
    "campaign_id",
}


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def client_for(*scopes: str, as_user=None) -> APIClient:
    _, raw = api_key_create(name="CRM sync", scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client: APIClient, url: str, body: dict, **headers):
    return client.post(url, body, format="json", headers=headers)


def frozen(monkeypatch, at: dt.datetime = NOW) -> None:
    """Every timezone.now() answers `at`: two runs of the same work give the same rows."""
    monkeypatch.setattr(timezone, "now", lambda: at)


def lead_state(lead: Lead) -> dict:
    lead.refresh_from_db()
    return {
        f.name: getattr(lead, f.attname)
        for f in Lead._meta.concrete_fields
        if f.name not in COPY_FIELDS_IGNORED
    }


def lead_events(lead: Lead) -> list[tuple]:
    """The lead's events in order, without what names rows of one copy."""
    out = []
    for e in LeadEvent.objects.filter(lead_id=lead.pk).order_by("id"):
        payload = {k: v for k, v in e.payload.items() if k not in PAYLOAD_IDS}
        if e.type == EventType.LEAD_UPDATED:
            payload = {
                "changes": {k: v for k, v in e.payload["changes"].items() if k not in PAYLOAD_IDS}
            }
        out.append((e.type, e.occurred_at, e.recorded_at, e.actor_id, e.system, payload))
    return out


def rounded(value):
    """Floats to 9 places, inside dicts and lists too (sums in another order differ in the
    last bits)."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(rounded(v) for v in value)
    return value


def assert_same_copies(one_by_one: list[Lead], bulk: list[Lead]) -> None:
    assert len(one_by_one) == len(bulk)
    for a, b in zip(one_by_one, bulk, strict=True):
        assert rounded(lead_state(b)) == rounded(lead_state(a))
        assert rounded(lead_events(b)) == rounded(lead_events(a))


# --- per-item answers ---------------------------------------------------------------------------


def test_items_are_answered_created_updated_unchanged_in_order():
    existing = LeadFactory(email="ann@example.com", external_id="sf-1", company="Old")
    same = LeadFactory(email="bob@example.com", company="Bobco")
    client = client_for("leads:write")

    response = post(
        client,
        URL,
        {
            "leads": [
                {"external_id": "sf-1", "company": "New"},
                {"email": "BOB@example.com", "company": "Bobco"},
                {"email": "cy@example.com", "first_name": "Cy", "source": None},
            ]
        },
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    created = Lead.objects.get(email="cy@example.com")
    assert body["results"] == [
        {"index": 0, "result": "updated", "id": existing.pk},
        {"index": 1, "result": "unchanged", "id": same.pk},
        {"index": 2, "result": "created", "id": created.pk},
    ]
    assert body["counts"] == {"created": 1, "updated": 1, "unchanged": 0, "error": 0} | {
        "unchanged": 1
    }
    existing.refresh_from_db()
    assert existing.company == "New"
    updated = LeadEvent.objects.get(type=EventType.LEAD_UPDATED, lead_id=existing.pk)
    assert updated.payload == {"changes": {"company": ["Old", "New"]}}
    assert updated.system == "api:CRM sync"
    assert not LeadEvent.objects.filter(lead_id=same.pk).exists()
    assert LeadEvent.objects.filter(type=EventType.LEAD_CREATED, lead_id=created.pk).count() == 1
    assert created.grade  # scored at once


def test_bad_items_are_errors_that_change_nothing_and_do_not_stop_the_others():
    lead = LeadFactory(email="ann@example.com", company="Acme")
    SourceFactory(key="google_ads", name="Google Ads")
    client = client_for("leads:write")
    before = LeadEvent.objects.count()

    response = post(
        client,
        URL,
        {
            "leads": [
                {"email": "not-an-email"},
                {"email": "ann@example.com", "stage": "won"},
                {"email": "ann@example.com", "source": "no-such-source", "company": "X"},
                {"email": "ok@example.com", "source": "Google Ads", "campaign": 999999},
                {"email": "ok2@example.com", "company_size": -3},
                {"company": "no key"},
                {"email": "x@example.com", "favourite": "blue"},
                {"email": "x@example.com", "first_name": {"not": "text"}},
                {"email": "good@example.com", "source": "Google Ads"},
            ]
        },
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["error"] * 8 + ["created"]
    assert [next(iter(r["errors"])) for r in results[:8]] == [
        "email",
        "stage",
        "source",
        "campaign",
        "company_size",
        "email",
        "favourite",
        "first_name",
    ]
    assert results[0]["errors"]["email"] == ["“not-an-email” is not a valid email address."]
    lead.refresh_from_db()
    assert (lead.company, lead.stage) == ("Acme", Stage.NEW)
    assert set(Lead.objects.values_list("email", flat=True)) == {
        "ann@example.com",
        "good@example.com",
    }
    good = Lead.objects.get(email="good@example.com")
    assert good.source.key == "google_ads"
    assert set(LeadEvent.objects.filter(id__gt=before).values_list("lead_id", flat=True)) == {
        good.pk
    }


def test_the_same_lead_twice_in_one_request_is_an_error_for_the_later_items():
    LeadFactory(email="ann@example.com", external_id="sf-1")
    client = client_for("leads:write")

    response = post(
        client,
        URL,
        {
            "leads": [
                {"email": "new@example.com", "company": "First"},
                {"email": "NEW@example.com", "company": "Second"},
                {"external_id": "sf-1", "company": "A"},
                {"email": "ann@example.com", "company": "B"},
            ]
        },
    )

    results = response.json()["results"]
    assert [r["result"] for r in results] == ["created", "error", "updated", "error"]
    assert results[1]["errors"] == {
        "email": ["The same lead as item 0; a lead may appear once per request."]
    }
    assert "item 2" in results[3]["errors"]["non_field_errors"][0]
    assert Lead.objects.get(email="new@example.com").company == "First"
    assert Lead.objects.get(external_id="sf-1").company == "A"


def test_campaign_by_id_or_utm_link_and_email_filled_on_a_lead_known_by_external_id():
    spring = CampaignFactory(name="Spring", utm_campaign="spring-2026")
    lead = LeadFactory(email=None, external_id="sf-9")
    client = client_for("leads:write")

    response = post(
        client,
        URL,
        {
            "leads": [
                {"external_id": "sf-9", "email": "Nine@Example.com"},
                {"email": "utm@example.com", "utm_campaign": "SPRING-2026"},
                {"email": "id@example.com", "campaign": spring.pk},
            ]
        },
    )

    assert [r["result"] for r in response.json()["results"]] == ["updated", "created", "created"]
    lead.refresh_from_db()
    assert lead.email == "nine@example.com"
    assert Lead.objects.get(email="utm@example.com").campaign == spring
    assert Lead.objects.get(email="id@example.com").campaign == spring


def test_a_batch_that_collides_with_another_writer_is_read_again_and_written_once(monkeypatch):
    LeadFactory(email="ann@example.com", company="Old")
    real_insert = upsert.rows_insert
    calls = []

    def collide_once(*, objs):
        calls.append(len(objs))
        if len(calls) == 1:
            real_insert(objs=objs)
            raise IntegrityError("duplicate key value violates unique constraint")
        real_insert(objs=objs)

    monkeypatch.setattr(upsert, "rows_insert", collide_once)
    body = {"leads": [{"email": "ann@example.com", "company": "New"}, {"email": "cy@example.com"}]}

    response = post(client_for("leads:write"), URL, body)

    assert [r["result"] for r in response.json()["results"]] == ["updated", "created"]
    assert calls == [1, 1]
    assert Lead.objects.filter(email="cy@example.com").count() == 1
    assert LeadEvent.objects.filter(type=EventType.LEAD_CREATED).count() == 1
    assert LeadEvent.objects.filter(type=EventType.LEAD_UPDATED).count() == 1


# --- limits ------------------------------------------------------------------------------------


def test_more_than_1000_leads_is_refused_whole_before_anything_is_done():
    client = client_for("leads:write")
    items = [{"email": f"l{i}@example.com"} for i in range(1001)]

    response = post(client, URL, {"leads": items})

    assert response.status_code == 400
    body = response.json()
    assert "At most 1000 leads" in body["errors"]["leads"][0]
    assert not Lead.objects.exists()


def test_an_empty_list_does_nothing():
    response = post(client_for("leads:write"), URL, {"leads": []})

    assert response.status_code == 200
    assert response.json() == {
        "counts": {"created": 0, "updated": 0, "unchanged": 0, "error": 0},
        "results": [],
    }


@pytest.mark.parametrize(
    "body",
    [{}, {"leads": None}, {"leads": {"email": "a@b.c"}}, [], {"leads": [{"email": "a@b.c"}, 3]}],
)
def test_a_body_without_a_list_of_leads_is_a_400(body):
    response = post(client_for("leads:write"), URL, body)

    assert response.status_code == 400
    assert any(name.startswith("leads") for name in response.json()["errors"])
    assert not Lead.objects.exists()


# --- the same as lead_intake, one by one ----------------------------------------------------------


def copy_lead(**fields) -> Lead:
    """A lead whose every field is given (no fake names, no creation time of its own)."""
    defaults = {"first_name": "Ann", "last_name": "Lee", "company": "Acme"}
    defaults |= {"created_at": NOW, "stage_changed_at": NOW}
    return LeadFactory(**(defaults | fields))


def _world(tag: str) -> tuple[list[Lead], list[dict]]:
    """The same leads (under emails of their own) and the same bulk items, per copy."""
    CampaignFactory(name=f"Spring {tag}", utm_campaign=f"spring-{tag}")
    # engaged, but short of the fit the MQL definition needs: a new title makes it cross
    engaged = copy_lead(email=f"engaged@{tag}.example", title="Assistant", company_size=5)
    for kind in ("demo_request", "form_submit", "webinar_attended", "content_download"):
        touchpoint_record(lead=engaged, kind=kind, system="seed")
    unchanged = copy_lead(email=f"same@{tag}.example", company="Same")
    known_by_id = copy_lead(email=None, external_id=f"ext-{tag}", company="Ext")
    # scored by no version yet: the update scores it from its touchpoints
    never_scored = copy_lead(email=f"never@{tag}.example")
    leads = [engaged, unchanged, known_by_id, never_scored]
    items = [
        {
            "email": f"engaged@{tag}.example",
            "title": "CEO",
            "company_size": 5000,
            "industry": "Software",
        },
        {"email": f"same@{tag}.example", "company": "Same"},
        {"external_id": f"ext-{tag}", "email": f"ext@{tag}.example", "attributes": {"plan": 3}},
        {"email": f"never@{tag}.example", "phone": "+49 30 1234"},
        {
            "email": f"new@{tag}.example",
            "title": "VP Sales",
            "utm_campaign": f"spring-{tag}",
            "company_size": 800,
            "country": "DE",
        },
        {"external_id": f"new-ext-{tag}", "first_name": "Nia", "source": "Google Ads"},
    ]
    return leads, items


def _keys(item: dict) -> Lead:
    if item.get("external_id"):
        return Lead.objects.get(external_id=item["external_id"])
    return Lead.objects.get(email=item["email"])


def test_bulk_writes_the_same_rows_events_and_scores_as_lead_intake_one_by_one(
    monkeypatch, marketer, mql_events
):
    frozen(monkeypatch)
    SourceFactory(key="google_ads", name="Google Ads")
    leads_a, items_a = _world("a")
    leads_b, items_b = _world("b")
    Lead.objects.filter(pk=leads_a[3].pk).update(scored_with=None)
    Lead.objects.filter(pk=leads_b[3].pk).update(scored_with=None)

    answers = [lead_intake(data=item, by=marketer, system="api:CRM sync") for item in items_a]
    response = post(client_for("leads:write", as_user=marketer), URL, {"leads": items_b})

    results = response.json()["results"]
    assert [r["result"] for r in results] == [
        "updated" if a.changed and not a.created else "created" if a.created else "unchanged"
        for a in answers
    ]
    assert [r["result"] for r in results] == [
        "updated",
        "unchanged",
        "updated",
        "updated",
        "created",
        "created",
    ]
    # the engaged lead crossed into MQL in both copies
    assert list(mql_events) == [leads_a[0].pk, leads_b[0].pk]
    assert_same_copies(
        [_keys(i) for i in items_a[:3]] + [leads_a[3]] + [_keys(i) for i in items_a[4:]],
        [_keys(i) for i in items_b[:3]] + [leads_b[3]] + [_keys(i) for i in items_b[4:]],
    )


# --- idempotency, scopes, roles ----------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer():
    client = client_for("leads:write")
    body = {"leads": [{"email": "ann@example.com"}, {"email": "bad"}]}

    first = post(client, URL, body, **{"Idempotency-Key": "batch-1"})
    events = LeadEvent.objects.count()
    again = post(client, URL, body, **{"Idempotency-Key": "batch-1"})

    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert LeadEvent.objects.count() == events
    assert Lead.objects.count() == 1


@pytest.mark.parametrize("scopes", [("leads:read",), ("touchpoints:write", "pipeline:write")])
def test_a_key_without_leads_write_gets_403_and_nothing_changes(scopes):
    response = post(client_for(*scopes), URL, {"leads": [{"email": "ann@example.com"}]})

    assert response.status_code == 403
    assert "leads:write" in response.json()["detail"]
    assert not Lead.objects.exists()


def test_a_key_acting_as_someone_without_a_team_role_gets_403(outsider):
    client = client_for("leads:write", as_user=outsider)

    response = post(client, URL, {"leads": [{"email": "ann@example.com"}]})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    assert not Lead.objects.exists()


def test_a_key_acting_as_a_person_records_the_person(rep):
    client = client_for("leads:write", as_user=rep)

    post(client, URL, {"leads": [{"email": "ann@example.com"}]})

    event = LeadEvent.objects.get(type=EventType.LEAD_CREATED)
    assert (event.actor_id, event.system) == (rep.pk, "api:CRM sync")


# --- query counts ---------------------------------------------------------------------------------


def _queries(client: APIClient, items: list[dict]) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = post(client, URL, {"leads": items})
    assert response.status_code == 200
    return len(queries)


# Django splits a bulk_create on SQLite at 999 parameters (the events and outbox entries of more
# than ~45 leads); PostgreSQL writes a request of any size in one statement per table
LARGER = 50 if connection.vendor == "postgresql" else 40


def test_a_bulk_request_runs_the_same_queries_for_10_and_for_50_leads():
    SourceFactory(key="web", name="Web")
    CampaignFactory(utm_campaign="fall")
    for i in range(60):
        LeadFactory(email=f"old{i}@example.com")
    client = client_for("leads:write")

    def items(n: int, offset: int) -> list[dict]:
        half = n // 2
        return [
            {"email": f"new{offset + i}@example.com", "source": "web", "utm_campaign": "fall"}
            for i in range(half)
        ] + [{"email": f"old{offset + i}@example.com", "title": "CTO"} for i in range(n - half)]

    _queries(client, items(4, 100))  # warm: the key's last use, the compiled model
    ten = _queries(client, items(10, 0))
    larger = _queries(client, items(LARGER, 10))

    # key, 2 savepoints, lock, campaigns, sources, scoring model, touchpoints of leads never
    # scored, insert, update, events, the webhooks' gate, outbox (the new leads' KPI rollup),
    # 2 releases
    assert ten == larger == 15


def test_rows_insert_writes_what_bulk_create_writes():
    """The INSERT sends a column that holds one value in every row once: the rows read back are
    those bulk_create writes, in order, each with its own id."""
    at = timezone.now()

    def leads(prefix: str) -> list[Lead]:
        return [
            Lead(
                email=f"{prefix}{i}@rows.example",
                company="Same",
                deal_value=Decimal(value),
                attributes={"k": [1, "é"]} if i else {},
                company_size=None if i % 2 else 5,
                created_at=at,
                stage_changed_at=at,
            )
            for i, value in enumerate(["1.5", "1.50", "2"])
        ]

    ours, theirs = leads("a"), leads("b")
    rows_insert(objs=ours)
    Lead.objects.bulk_create(theirs)
    fields = [
        f.attname
        for f in Lead._meta.concrete_fields
        if f.attname not in ("id", "email", "updated_at")
    ]

    def read(objs: list[Lead]) -> list[tuple]:
        found = Lead.objects.filter(pk__in=[o.pk for o in objs]).order_by("pk")
        return list(found.values_list("email", *fields))

    assert [row[1:] for row in read(ours)] == [row[1:] for row in read(theirs)]
    assert [row[0] for row in read(ours)] == [o.email for o in ours]

    lead = LeadFactory()
    same = [
        Touchpoint(lead=lead, kind="web_visit", occurred_at=at, metadata={}, created_at=at)
        for _ in range(3)
    ]
    rows_insert(objs=same)
    assert len({t.pk for t in same}) == 3
    assert Touchpoint.objects.filter(lead=lead).count() == 3
