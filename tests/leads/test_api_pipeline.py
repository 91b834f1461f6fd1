"""Pipeline actions through the API: transitions with the lead pages' rules (roles, own leads,
reasons, deal values), reassignment, reason codes and the CSV import job."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from leads.models import (
    Assignment,
    EventType,
    ImportJob,
    ImportStatus,
    Lead,
    LeadEvent,
    Reason,
    Stage,
    StageChange,
)
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

THREE_ROWS = b"email,company\na@example.com,A\nnot-an-email,B\nc@example.com,C\n"


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def client_for(*scopes: str, as_user=None, name: str = "CRM sync") -> APIClient:
    _, raw = api_key_create(name=name, scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def transitions_url(lead) -> str:
    return reverse("api-lead-transitions", args=[lead.pk])


def move(client, lead, **body):
    return client.post(transitions_url(lead), body, format="json")


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def event_types(lead) -> list[str]:
    return list(
        LeadEvent.objects.filter(lead_id=lead.pk).order_by("id").values_list("type", flat=True)
    )


@pytest.fixture
def mql(rep):
    return LeadFactory(stage=Stage.MQL, owner=rep)


# --- transitions: the pages' rules -----------------------------------------------------------


def test_owner_rep_accepts_his_mql_and_the_move_and_its_events_are_written(rep, mql):
    response = move(client_for("pipeline:write", as_user=rep), mql, action="accept", note="Call")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["lead"]["id"] == mql.pk
    assert body["lead"]["stage"] == "sal"
    change = body["stage_change"]
    assert (change["from"], change["to"], change["by"], change["note"]) == (
        "mql",
        "sal",
        "rep",
        "Call",
    )
    mql.refresh_from_db()
    assert mql.stage == Stage.SAL
    assert event_types(mql) == [EventType.LEAD_STAGE_CHANGED, EventType.LEAD_ACCEPTED]
    assert LeadEvent.objects.filter(lead_id=mql.pk).first().actor == rep


def test_another_rep_may_not_accept_or_reject_the_lead_and_nothing_changes(other_rep, mql):
    client = client_for("pipeline:write", as_user=other_rep)

    for body in ({"action": "accept"}, {"action": "reject", "reason": "bad_fit"}):
        problem = assert_problem(move(client, mql, **body), 400)
        assert "not assigned to you" in problem["detail"]

    mql.refresh_from_db()
    assert mql.stage == Stage.MQL
    assert not StageChange.objects.filter(lead=mql).exists()
    assert event_types(mql) == []


def test_a_sales_manager_decides_any_lead(sales_manager, mql):
    response = move(client_for("pipeline:write", as_user=sales_manager), mql, action="accept")
    assert response.status_code == 200
    assert response.json()["stage_change"]["by"] == "sales_manager"


def test_reject_needs_a_reason_of_its_kind_and_a_note_where_the_reason_asks(rep, mql):
    client = client_for("pipeline:write", as_user=rep)

    assert "reason" in assert_problem(move(client, mql, action="reject"), 400)["errors"]
    # a lost reason is not a rejection reason
    assert (
        "reason"
        in assert_problem(move(client, mql, action="reject", reason="price"), 400)["errors"]
    )
    assert (
        "reason" in assert_problem(move(client, mql, action="reject", reason="nope"), 400)["errors"]
    )
    assert (
        "note" in assert_problem(move(client, mql, action="reject", reason="other"), 400)["errors"]
    )
    mql.refresh_from_db()
    assert mql.stage == Stage.MQL
    assert event_types(mql) == []

    response = move(client, mql, action="reject", reason="bad_fit")
    assert response.status_code == 200
    assert response.json()["stage_change"]["reason"] == "bad_fit"
    assert event_types(mql) == [EventType.LEAD_STAGE_CHANGED, EventType.LEAD_REJECTED]


def test_rejecting_with_a_reason_that_recycles_recycles_the_lead(rep, mql):
    response = move(
        client_for("pipeline:write", as_user=rep), mql, action="reject", reason="not_ready"
    )

    assert response.status_code == 200
    assert response.json()["stage_change"]["to"] == "recycled"
    assert response.json()["lead"]["owner"] is None
    assert EventType.LEAD_RECYCLED in event_types(mql)


def test_opportunity_and_win_need_a_deal_value_and_winning_reuses_the_opportunitys(rep):
    lead = LeadFactory(stage=Stage.SQL, owner=rep)
    client = client_for("pipeline:write", as_user=rep)

    problem = assert_problem(move(client, lead, action="open_opportunity"), 400)
    assert "deal_value" in problem["errors"]
    assert (
        "deal_value"
        in assert_problem(move(client, lead, action="open_opportunity", deal_value="-5"), 400)[
            "errors"
        ]
    )
    assert (
        "deal_value"
        in assert_problem(move(client, lead, action="open_opportunity", deal_value="abc"), 400)[
            "errors"
        ]
    )

    response = move(client, lead, action="open_opportunity", deal_value="48000.00")
    assert response.status_code == 200
    assert response.json()["stage_change"]["deal_value"] == "48000.00"

    response = move(client, lead, action="win")
    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value) == (Stage.WON, Decimal("48000.00"))
    assert event_types(lead)[-2:] == [EventType.LEAD_STAGE_CHANGED, EventType.LEAD_WON]


def test_win_without_any_deal_value_is_refused(rep):
    lead = LeadFactory(stage=Stage.OPPORTUNITY, owner=rep)
    problem = assert_problem(
        move(client_for("pipeline:write", as_user=rep), lead, action="win"), 400
    )
    assert "deal_value" in problem["errors"]
    lead.refresh_from_db()
    assert lead.stage == Stage.OPPORTUNITY


def test_lose_needs_a_lost_reason(rep):
    lead = LeadFactory(stage=Stage.SAL, owner=rep)
    client = client_for("pipeline:write", as_user=rep)

    assert (
        "reason"
        in assert_problem(move(client, lead, action="lose", reason="bad_fit"), 400)["errors"]
    )
    assert move(client, lead, action="lose", reason="price").status_code == 200
    assert event_types(lead)[-1] == EventType.LEAD_LOST


def test_a_move_the_stage_does_not_allow_is_a_409_with_the_lifecycles_sentence(rep, mql):
    problem = assert_problem(
        move(client_for("pipeline:write", as_user=rep), mql, action="win", deal_value="10"), 409
    )
    assert "cannot move to Won" in problem["detail"]
    assert "stage" in problem["errors"]
    mql.refresh_from_db()
    assert mql.stage == Stage.MQL
    assert event_types(mql) == []


def test_an_unknown_action_is_a_field_error(rep, mql):
    problem = assert_problem(
        move(client_for("pipeline:write", as_user=rep), mql, action="fly"), 400
    )
    assert "action" in problem["errors"]


def test_a_role_that_may_not_make_the_move_gets_403(marketer, rep, mql):
    problem = assert_problem(
        move(client_for("pipeline:write", as_user=marketer), mql, action="accept"), 403
    )
    assert "lead.decide" in problem["detail"]
    # a rep may not qualify (marketing's move)
    lead = LeadFactory(stage=Stage.NEW)
    assert_problem(move(client_for("pipeline:write", as_user=rep), lead, action="qualify"), 403)
    assert event_types(lead) == [] and event_types(mql) == []


def test_marketing_qualifies_by_hand(marketer):
    lead = LeadFactory(stage=Stage.NEW)
    response = move(client_for("pipeline:write", as_user=marketer), lead, action="qualify")
    assert response.status_code == 200
    assert response.json()["lead"]["stage"] == "mql"
    assert EventType.LEAD_MQL in event_types(lead)


def test_a_key_acting_as_nobody_may_not_make_sales_decisions(mql):
    client = client_for("pipeline:write")

    for action in ("accept", "recycle", "reject"):
        problem = assert_problem(move(client, mql, action=action, reason="bad_fit"), 403)
        assert "sales decision" in problem["detail"]
    mql.refresh_from_db()
    assert mql.stage == Stage.MQL
    assert event_types(mql) == []


def test_a_key_acting_as_nobody_nurtures_and_qualifies_as_a_named_system():
    lead = LeadFactory(stage=Stage.NEW)
    client = client_for("pipeline:write", name="Marketo")

    assert move(client, lead, action="nurture").status_code == 200
    response = move(client, lead, action="qualify")

    assert response.status_code == 200
    change = response.json()["stage_change"]
    assert (change["by"], change["system"]) == (None, "api:Marketo")
    assert set(
        LeadEvent.objects.filter(lead_id=lead.pk, type=EventType.LEAD_MQL).values_list(
            "system", flat=True
        )
    ) == {"api:Marketo"}


def test_a_key_without_pipeline_write_gets_403_and_nothing_changes(rep, mql):
    client = client_for("leads:read", "leads:write", "events:read", as_user=rep)
    problem = assert_problem(move(client, mql, action="accept"), 403)
    assert "pipeline:write" in problem["detail"]
    mql.refresh_from_db()
    assert mql.stage == Stage.MQL


def test_a_retried_move_with_the_same_idempotency_key_is_answered_once(rep, mql):
    client = client_for("pipeline:write", as_user=rep)
    url = transitions_url(mql)

    first = client.post(url, {"action": "accept"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url, {"action": "accept"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert StageChange.objects.filter(lead=mql).count() == 1
    # without the key, the same request is a new move, refused from SAL
    assert client.post(url, {"action": "accept"}, format="json").status_code == 409


def test_an_unknown_lead_is_a_404(rep):
    response = client_for("pipeline:write", as_user=rep).post(
        "/api/v1/leads/999999/transitions/", {"action": "accept"}, format="json"
    )
    assert_problem(response, 404)


# --- the moves the caller may make now --------------------------------------------------------


def test_the_owner_rep_sees_his_moves_with_the_reasons_each_takes(rep, mql):
    response = client_for("leads:read", as_user=rep).get(transitions_url(mql))

    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == "mql"
    moves = {m["action"]: m for m in body["moves"]}
    assert set(moves) == {"accept", "reject", "recycle"}
    assert moves["accept"]["reason_required"] is False
    reject_codes = {r["code"] for r in moves["reject"]["reasons"]}
    assert {"bad_fit", "not_ready", "other"} <= reject_codes
    assert all(r["kind"] == "reject" for r in moves["reject"]["reasons"])
    assert all(r["recycles"] for r in moves["recycle"]["reasons"])


def test_listing_moves_costs_a_fixed_number_of_queries(rep, mql, django_assert_num_queries):
    client = client_for("leads:read", as_user=rep)
    client.get(transitions_url(mql))  # the key's last use is written at most once a minute
    with django_assert_num_queries(3):  # the key, the lead, the reasons
        assert len(client.get(transitions_url(mql)).json()["moves"]) == 3


def test_another_rep_and_a_nobody_key_see_what_they_may_do(other_rep):
    lead = LeadFactory(stage=Stage.MQL, owner=None)
    assert (
        client_for("leads:read", as_user=other_rep).get(transitions_url(lead)).json()["moves"] == []
    )

    new = LeadFactory(stage=Stage.NEW)
    moves = client_for("leads:read").get(transitions_url(new)).json()["moves"]
    assert [m["action"] for m in moves] == ["nurture", "qualify"]


def test_deal_value_is_required_only_while_the_lead_has_none(rep):
    lead = LeadFactory(stage=Stage.OPPORTUNITY, owner=rep)
    client = client_for("leads:read", as_user=rep)
    moves = {m["action"]: m for m in client.get(transitions_url(lead)).json()["moves"]}
    assert moves["win"]["deal_value_required"] is True
    Lead.objects.filter(pk=lead.pk).update(deal_value=100)
    moves = {m["action"]: m for m in client.get(transitions_url(lead)).json()["moves"]}
    assert moves["win"]["deal_value_required"] is False


def test_listing_moves_needs_leads_read(rep, mql):
    problem = assert_problem(
        client_for("pipeline:write", as_user=rep).get(transitions_url(mql)), 403
    )
    assert "leads:read" in problem["detail"]
    assert "moves" not in problem


# --- reassignment ----------------------------------------------------------------------------


def assign(client, lead, owner, **extra):
    return client.post(
        reverse("api-lead-assignment", args=[lead.pk]), {"owner": owner, **extra}, format="json"
    )


def test_a_sales_manager_reassigns_by_username_or_id(sales_manager, rep, other_rep, mql):
    client = client_for("pipeline:write", as_user=sales_manager)

    response = assign(client, mql, "other_rep", note="Covers DACH")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["lead"]["owner"]["username"] == "other_rep"
    assert (body["assignment"]["previous_owner"], body["assignment"]["by"]) == (
        "rep",
        "sales_manager",
    )
    assert assign(client, mql, rep.pk).status_code == 200
    mql.refresh_from_db()
    assert mql.owner == rep
    assert Assignment.objects.filter(lead=mql).count() == 2
    assert event_types(mql) == [EventType.LEAD_ASSIGNED, EventType.LEAD_ASSIGNED]


def test_reassignment_refusals_change_nothing(sales_manager, rep, marketer, mql):
    client = client_for("pipeline:write", as_user=sales_manager)

    assert "owner" in assert_problem(assign(client, mql, "nobody-here"), 400)["errors"]
    assert "owner" in assert_problem(assign(client, mql, "rep"), 400)["errors"]  # already his
    assert "owner" in assert_problem(assign(client, mql, marketer.pk), 400)["errors"]
    assert (
        "lead.assign"
        in assert_problem(assign(client_for("pipeline:write", as_user=rep), mql, "rep"), 403)[
            "detail"
        ]
    )
    assert (
        "sales manager"
        in assert_problem(assign(client_for("pipeline:write"), mql, "rep"), 403)["detail"]
    )
    assert (
        "pipeline:write"
        in assert_problem(
            assign(client_for("leads:write", as_user=sales_manager), mql, "other_rep"), 403
        )["detail"]
    )
    mql.refresh_from_db()
    assert mql.owner == rep
    assert not Assignment.objects.filter(lead=mql).exists()


def test_a_retried_reassignment_is_answered_once(sales_manager, other_rep, mql):
    client = client_for("pipeline:write", as_user=sales_manager)
    url = reverse("api-lead-assignment", args=[mql.pk])
    first = client.post(url, {"owner": "other_rep"}, format="json", HTTP_IDEMPOTENCY_KEY="a")
    again = client.post(url, {"owner": "other_rep"}, format="json", HTTP_IDEMPOTENCY_KEY="a")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert Assignment.objects.filter(lead=mql).count() == 1


# --- reason codes ----------------------------------------------------------------------------


def test_reasons_lists_the_active_codes_with_filters(rep, django_assert_num_queries):
    Reason.objects.filter(kind="lost", code="timing").update(active=False)
    client = client_for("leads:read", as_user=rep)
    url = reverse("api-reasons")

    client.get(url)  # the key's last use is written once a minute
    with django_assert_num_queries(2):  # the key, the reasons
        everything = client.get(url).json()
    assert {"kind", "code", "label", "recycles", "requires_note"} == set(everything[0])
    assert ("lost", "timing") not in {(r["kind"], r["code"]) for r in everything}
    assert len(everything) == Reason.objects.filter(active=True).count()

    lost = client.get(url, {"kind": "lost"}).json()
    assert {r["kind"] for r in lost} == {"lost"} and lost
    recycle = client.get(url, {"action": "recycle"}).json()
    assert recycle and all(r["recycles"] for r in recycle)
    assert len({r["code"] for r in recycle}) == len(recycle)
    assert client.get(url, {"action": "accept"}).json() == []
    assert {r["code"] for r in client.get(url, {"action": "reject", "kind": "reject"}).json()} >= {
        "bad_fit"
    }


def test_reasons_refuse_unknown_filters_and_keys_without_leads_read(rep):
    url = reverse("api-reasons")
    problem = assert_problem(client_for("leads:read").get(url, {"kind": "x", "action": "y"}), 400)
    assert set(problem["errors"]) == {"kind", "action"}
    assert "leads:read" in assert_problem(client_for("pipeline:write").get(url), 403)["detail"]


def test_a_key_acting_as_someone_without_a_role_reads_no_reasons(outsider):
    assert_problem(client_for("leads:read", as_user=outsider).get(reverse("api-reasons")), 403)


# --- the CSV import job ----------------------------------------------------------------------


def upload(client, content: bytes = THREE_ROWS, **options):
    return client.post(
        reverse("api-imports"),
        {"file": SimpleUploadedFile("leads.csv", content, content_type="text/csv"), **options},
        format="multipart",
    )


def test_an_import_is_queued_run_and_polled_with_row_numbered_errors(
    marketer, django_capture_on_commit_callbacks
):
    client = client_for("leads:write", as_user=marketer)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client)

    assert response.status_code == 202, response.content
    assert response.json()["status"] == ImportStatus.QUEUED  # the task runs after commit
    job = ImportJob.objects.get()
    assert response["Location"].endswith(reverse("api-import", args=[job.pk]))
    status = client.get(response["Location"]).json()
    assert status["status"] == ImportStatus.DONE and status["finished"]
    assert (status["created"], status["bad_rows"], status["total_rows"]) == (2, 1, 3)
    assert status["errors"][0]["row"] == 3
    assert status["errors"][0]["column"] == "email"
    assert Lead.objects.filter(email__in=["a@example.com", "c@example.com"]).count() == 2


def test_a_dry_run_import_writes_nothing(marketer, django_capture_on_commit_callbacks):
    client = client_for("leads:write", as_user=marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, dry_run="true")
    assert response.status_code == 202
    status = client.get(response["Location"]).json()
    assert status["dry_run"] is True and status["status"] == ImportStatus.DONE
    assert not Lead.objects.exists()


def test_the_job_answers_queued_until_a_worker_takes_it(marketer):
    response = upload(client_for("leads:write", as_user=marketer))  # no commit: nothing queued
    assert response.status_code == 202
    assert response.json()["status"] == ImportStatus.QUEUED
    assert response.json()["finished"] is False


def test_a_bad_file_is_a_400_and_no_job(marketer):
    client = client_for("leads:write", as_user=marketer)

    assert (
        "file"
        in assert_problem(client.post(reverse("api-imports"), {}, format="multipart"), 400)[
            "errors"
        ]
    )
    assert_problem(upload(client, b""), 400)
    assert (
        "byte 0xff"
        in assert_problem(upload(client, b"email\nb\xffd@example.com\n", encoding="utf-8"), 400)[
            "detail"
        ]
    )
    assert (
        "twice" in assert_problem(upload(client, b"email,email\na@x.com,b@x.com\n"), 400)["detail"]
    )
    assert "delimiter" in assert_problem(upload(client, delimiter="#"), 400)["errors"]
    assert (
        "mapping"
        in assert_problem(
            upload(client, mapping=SimpleUploadedFile("map.json", b"{not json")), 400
        )["errors"]
    )
    assert not ImportJob.objects.exists()


def test_import_is_for_marketing_and_needs_leads_write(rep, marketer):
    assert (
        "marketing" in assert_problem(upload(client_for("leads:write", as_user=rep)), 403)["detail"]
    )
    assert "marketing" in assert_problem(upload(client_for("leads:write")), 403)["detail"]
    assert (
        "leads:write"
        in assert_problem(
            upload(client_for("leads:read", "pipeline:write", as_user=marketer)), 403
        )["detail"]
    )
    assert not ImportJob.objects.exists()


def test_a_retried_upload_with_the_same_idempotency_key_makes_one_job(marketer):
    client = client_for("leads:write", as_user=marketer)

    def send():
        return client.post(
            reverse("api-imports"),
            {"file": SimpleUploadedFile("leads.csv", THREE_ROWS)},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="upload-1",
        )

    first, again = send(), send()
    assert (first.status_code, again.status_code) == (202, 202)
    assert again["Location"] == first["Location"]
    assert ImportJob.objects.count() == 1


def test_polling_a_job_needs_leads_write(marketer):
    job = ImportJob.objects.create(created_by=marketer, filename="x.csv")
    url = reverse("api-import", args=[job.pk])
    assert client_for("leads:write", as_user=marketer).get(url).json()["id"] == job.pk
    problem = assert_problem(client_for("leads:read").get(url), 403)
    assert "id" not in problem
    assert_problem(client_for("leads:write").get("/api/v1/imports/99999/"), 404)
