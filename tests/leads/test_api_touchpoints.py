"""POST /api/v1/touchpoints/: per-item answers, unknown leads refused or created, sales kinds
and roles, the same rows, events and scores as touchpoint_record one by one (an MQL crossing in
the middle of a request included), idempotent replay, scopes, query counts."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import EventType, Lead, LeadEvent, Stage, Touchpoint
from leads.services import touchpoint_record
from tests.factories import CampaignFactory, LeadFactory
from tests.leads.test_api_bulk import NOW, assert_same_copies, client_for, copy_lead, frozen, post

pytestmark = pytest.mark.django_db

URL = "/api/v1/touchpoints/"
AN_HOUR_AGO = (NOW - dt.timedelta(hours=1)).isoformat()


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def results(response) -> list[dict]:
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_touchpoints_are_recorded_scored_and_answered_per_item(monkeypatch):
    frozen(monkeypatch)
    spring = CampaignFactory(utm_campaign="spring-2026")
    ann = LeadFactory(email="ann@example.com", external_id="sf-1")
    score_before = ann.score
    client = client_for("touchpoints:write")

    answers = results(
        post(
            client,
            URL,
            {
                "touchpoints": [
                    {"lead_id": ann.pk, "kind": "demo_request", "occurred_at": AN_HOUR_AGO},
                    {
                        "external_id": "sf-1",
                        "kind": "web_visit",
                        "occurred_at": AN_HOUR_AGO,
                        "metadata": {"utm_campaign": "SPRING-2026", "page": "/pricing"},
                    },
                    {
                        "email": "ANN@example.com",
                        "kind": "email_click",
                        "occurred_at": "2026-11-20",
                    },
                    {
                        "email": "nobody@example.com",
                        "kind": "web_visit",
                        "occurred_at": AN_HOUR_AGO,
                    },
                    {"lead_id": ann.pk, "kind": "bogus", "occurred_at": AN_HOUR_AGO},
                    {
                        "lead_id": ann.pk,
                        "kind": "web_visit",
                        "occurred_at": "2026-11-20T09:00:00",
                    },
                    {
                        "lead_id": ann.pk,
                        "kind": "web_visit",
                        "occurred_at": (NOW + dt.timedelta(hours=1)).isoformat(),
                    },
                    {"lead_id": ann.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO, "x": 1},
                    {"lead_id": 10**9, "kind": "web_visit", "occurred_at": AN_HOUR_AGO},
                ]
            },
        )
    )

    assert [r["result"] for r in answers] == ["recorded", "recorded"] + ["error"] * 7
    assert answers[0] == {"index": 0, "result": "recorded", "id": ann.pk}
    assert [next(iter(r["errors"])) for r in answers[2:]] == [
        "occurred_at",
        "email",
        "kind",
        "occurred_at",
        "occurred_at",
        "x",
        "lead_id",
    ]
    assert "create_unknown" in answers[3]["errors"]["email"][0]
    assert "offset" in answers[5]["errors"]["occurred_at"][0]
    assert Touchpoint.objects.filter(lead=ann).count() == 2
    visit = Touchpoint.objects.get(lead=ann, kind="web_visit")
    assert visit.campaign == spring
    ann.refresh_from_db()
    assert ann.score > score_before
    events = LeadEvent.objects.filter(type=EventType.TOUCHPOINT_RECORDED).order_by("id")
    assert [e.payload for e in events] == [
        {
            "touchpoint_id": Touchpoint.objects.get(lead=ann, kind="demo_request").pk,
            "kind": "demo_request",
            "campaign_id": None,
            "sales": False,
        },
        {"touchpoint_id": visit.pk, "kind": "web_visit", "campaign_id": spring.pk, "sales": False},
    ]
    assert {e.system for e in events} == {"api:CRM sync"}


def test_unknown_leads_are_created_when_the_request_says_so():
    client = client_for("touchpoints:write")
    at = "2026-11-20T09:00:00+01:00"

    answers = results(
        post(
            client,
            URL,
            {
                "touchpoints": [
                    {"email": "New@example.com", "kind": "web_visit", "occurred_at": at},
                    {"email": "new@example.com", "kind": "email_open", "occurred_at": at},
                    {"external_id": "crm-7", "kind": "form_submit", "occurred_at": at},
                    {"email": "not an email", "kind": "web_visit", "occurred_at": at},
                    {"lead_id": 10**6, "kind": "web_visit", "occurred_at": at},
                ],
                "create_unknown": True,
            },
        )
    )

    new = Lead.objects.get(email="new@example.com")
    crm = Lead.objects.get(external_id="crm-7")
    assert [r.get("id") for r in answers[:3]] == [new.pk, new.pk, crm.pk]
    assert [r["result"] for r in answers[3:]] == ["error", "error"]
    assert Lead.objects.count() == 2
    assert new.touchpoints.count() == 2
    assert LeadEvent.objects.filter(type=EventType.LEAD_CREATED).count() == 2


# --- sales kinds and roles ------------------------------------------------------------------------


def test_a_key_acting_as_nobody_may_send_marketing_kinds_only():
    lead = LeadFactory()
    client = client_for("touchpoints:write")

    answers = results(
        post(
            client,
            URL,
            {
                "touchpoints": [
                    {"lead_id": lead.pk, "kind": "call", "occurred_at": AN_HOUR_AGO},
                    {"lead_id": lead.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO},
                ]
            },
        )
    )

    assert [r["result"] for r in answers] == ["error", "recorded"]
    assert "need a person" in answers[0]["errors"]["kind"][0]
    assert list(Touchpoint.objects.values_list("kind", flat=True)) == ["web_visit"]


def test_content_shared_is_refused_here_it_is_recorded_by_sharing_an_asset():
    lead = LeadFactory()
    client = client_for("touchpoints:write")

    answers = results(
        post(
            client,
            URL,
            {"touchpoints": [{"lead_id": lead.pk, "kind": "content_shared"}]},
        )
    )

    assert answers[0]["result"] == "error"
    assert "/api/v1/assets/{id}/share/" in answers[0]["errors"]["kind"][0]
    assert not Touchpoint.objects.exists()


def test_a_rep_logs_calls_on_their_own_leads_only_and_the_first_touch_is_stamped(
    monkeypatch, rep, other_rep
):
    frozen(monkeypatch)
    mql_at = NOW - dt.timedelta(hours=2)
    own = LeadFactory(owner=rep, stage=Stage.MQL, mql_at=mql_at)
    others = LeadFactory(owner=other_rep, stage=Stage.MQL, mql_at=mql_at)
    client = client_for("touchpoints:write", as_user=rep)

    answers = results(
        post(
            client,
            URL,
            {
                "touchpoints": [
                    {"lead_id": own.pk, "kind": "call", "occurred_at": AN_HOUR_AGO},
                    {"lead_id": own.pk, "kind": "meeting", "occurred_at": AN_HOUR_AGO},
                    {"lead_id": others.pk, "kind": "call", "occurred_at": AN_HOUR_AGO},
                    {"lead_id": own.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO},
                ]
            },
        )
    )

    assert [r["result"] for r in answers] == ["recorded", "recorded", "error", "error"]
    assert "not assigned to you" in answers[2]["errors"]["non_field_errors"][0]
    assert "touchpoint.marketing" in answers[3]["errors"]["kind"][0]
    own.refresh_from_db()
    assert own.first_sales_touch_at == NOW - dt.timedelta(hours=1)
    payloads = [
        e.payload
        for e in LeadEvent.objects.filter(type=EventType.TOUCHPOINT_RECORDED).order_by("id")
    ]
    assert [p.get("first_sales_touch") for p in payloads] == [True, None]
    assert all(p["sales"] for p in payloads)


# --- the same as touchpoint_record, one by one ----------------------------------------------------


def _world(tag: str) -> tuple[list[Lead], list[dict]]:
    # fit enough for the MQL definition: engagement makes it cross in the middle of the request
    hot = copy_lead(email=f"hot@{tag}.example", title="CEO", company_size=5000, industry="Software")
    warm = copy_lead(email=f"warm@{tag}.example", external_id=f"warm-{tag}")
    touchpoint_record(
        lead=warm, kind="web_visit", occurred_at=NOW - dt.timedelta(days=20), system="s"
    )
    never = copy_lead(email=f"never@{tag}.example")
    Lead.objects.filter(pk=never.pk).update(scored_with=None)
    t = [(NOW - dt.timedelta(minutes=m)).isoformat() for m in (50, 40, 30, 20, 10)]
    items = [
        {"email": f"hot@{tag}.example", "kind": "demo_request", "occurred_at": t[0]},
        {"external_id": f"warm-{tag}", "kind": "email_click", "occurred_at": t[0]},
        {"email": f"hot@{tag}.example", "kind": "webinar_attended", "occurred_at": t[1]},
        {"email": f"never@{tag}.example", "kind": "form_submit", "occurred_at": t[1]},
        # after the crossing: recorded on the MQL, the first sales touch stamped
        {"email": f"hot@{tag}.example", "kind": "form_submit", "occurred_at": t[2]},
        {"email": f"hot@{tag}.example", "kind": "call", "occurred_at": t[3]},
        {"email": f"hot@{tag}.example", "kind": "call", "occurred_at": t[4]},
        {"email": f"never@{tag}.example", "kind": "web_visit", "occurred_at": t[4]},
    ]
    return [hot, warm, never], items


def test_ingest_writes_the_same_rows_events_and_scores_as_touchpoint_record_one_by_one(
    monkeypatch, admin_user, mql_events
):
    frozen(monkeypatch)
    leads_a, items_a = _world("a")
    leads_b, items_b = _world("b")
    by_email = {lead.email: lead for lead in leads_a}
    by_email["warm-a"] = leads_a[1]

    for item in items_a:
        lead = by_email[item.get("email") or item["external_id"]]
        touchpoint_record(
            lead=lead,
            kind=item["kind"],
            occurred_at=dt.datetime.fromisoformat(item["occurred_at"]),
            by=admin_user,
            system="api:CRM sync",
        )
    answers = results(
        post(client_for("touchpoints:write", as_user=admin_user), URL, {"touchpoints": items_b})
    )

    assert [r["result"] for r in answers] == ["recorded"] * len(items_b)
    assert list(mql_events) == [leads_a[0].pk, leads_b[0].pk]
    assert_same_copies(leads_a, leads_b)
    assert [
        sorted(Touchpoint.objects.filter(lead=lead).values_list("kind", "occurred_at"))
        for lead in leads_b
    ] == [
        sorted(Touchpoint.objects.filter(lead=lead).values_list("kind", "occurred_at"))
        for lead in leads_a
    ]


# --- limits, idempotency, scopes, roles -----------------------------------------------------------


def test_more_than_1000_touchpoints_is_refused_whole():
    lead = LeadFactory()
    items = [{"lead_id": lead.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO}] * 1001

    response = post(client_for("touchpoints:write"), URL, {"touchpoints": items})

    assert response.status_code == 400
    assert "At most 1000 touchpoints" in response.json()["errors"]["touchpoints"][0]
    assert not Touchpoint.objects.exists()


def test_create_unknown_must_be_a_boolean():
    lead = LeadFactory()
    items = [{"lead_id": lead.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO}]

    response = post(
        client_for("touchpoints:write"), URL, {"touchpoints": items, "create_unknown": "yes"}
    )

    assert response.status_code == 400
    assert "create_unknown" in response.json()["errors"]
    assert not Touchpoint.objects.exists()


def test_a_retry_with_the_same_idempotency_key_records_nothing_again():
    lead = LeadFactory()
    client = client_for("touchpoints:write")
    body = {"touchpoints": [{"lead_id": lead.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO}]}

    first = post(client, URL, body, **{"Idempotency-Key": "tp-1"})
    again = post(client, URL, body, **{"Idempotency-Key": "tp-1"})

    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Touchpoint.objects.count() == 1


@pytest.mark.parametrize("scopes", [("leads:write",), ("leads:read", "events:read")])
def test_a_key_without_touchpoints_write_gets_403_and_nothing_is_recorded(scopes):
    lead = LeadFactory()
    body = {"touchpoints": [{"lead_id": lead.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO}]}

    response = post(client_for(*scopes), URL, body)

    assert response.status_code == 403
    assert "touchpoints:write" in response.json()["detail"]
    assert not Touchpoint.objects.exists()


def test_a_key_acting_as_someone_without_a_team_role_gets_403(outsider):
    lead = LeadFactory()
    body = {"touchpoints": [{"lead_id": lead.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO}]}

    response = post(client_for("touchpoints:write", as_user=outsider), URL, body)

    assert response.status_code == 403
    assert not Touchpoint.objects.exists()


# --- query counts ---------------------------------------------------------------------------------


def test_an_ingest_runs_the_same_queries_for_10_and_for_50_touchpoints():
    leads = [LeadFactory() for _ in range(12)]
    client = client_for("touchpoints:write")
    # scored once, so that every lead is scored by the active version (no re-read)
    post(
        client,
        URL,
        {
            "touchpoints": [
                {"lead_id": lead.pk, "kind": "web_visit", "occurred_at": AN_HOUR_AGO}
                for lead in leads
            ]
        },
    )

    def queries(n: int) -> int:
        items = [
            {
                "lead_id": leads[i % len(leads)].pk,
                "kind": "email_open" if i % 2 else "web_visit",
                "occurred_at": AN_HOUR_AGO,
            }
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as captured:
            assert post(client, URL, {"touchpoints": items}).status_code == 200
        return len(captured)

    # key, savepoint, campaigns skipped (none named), lock, scoring model, insert, events,
    # outbox, score update, release
    assert queries(10) == queries(50) == 9
