"""/api/v1/scoring/: the versions read with `scoring:read`; propose, withdraw, send back and
approve with `scoring:approve` and the roles of the scoring pages, through the one sign-off."""

import pytest
from rest_framework.test import APIClient

from leads.models import ScoringApproval, ScoringModel, ScoringModelEvent
from leads.scoring import services as scoring
from leads.scoring.models import ModelAction, ModelStatus, RunKind, ScoringRun
from leads.scoring.rules import spec_of
from leads.scoring.views import APPROVERS_ONLY
from tests.alignment.test_api_keys import _clear_throttle_cache, assert_problem  # noqa: F401
from tests.factories import UserFactory
from tests.sla.test_api_sla import client

pytestmark = pytest.mark.django_db

BASE = "/api/v1/scoring"


def active_version() -> ScoringModel:
    return ScoringModel.objects.get(status=ModelStatus.ACTIVE)


def draft(by, **changes) -> ScoringModel:
    model = scoring.scoring_model_copy(model=active_version(), by=by, name="Spring tuning")
    return scoring.scoring_model_update(
        model=model, by=by, spec={**spec_of(model), "mql_total": 90, **changes}
    )


def proposal(by) -> ScoringModel:
    return scoring.scoring_model_propose(model=draft(by), by=by)


def approve(api, model: ScoringModel, **body):
    model.refresh_from_db()
    data = {"read_at": model.updated_at.isoformat(), **body}
    return api.post(f"{BASE}/versions/{model.pk}/approve/", data, format="json")


def state(model: ScoringModel) -> tuple:
    model.refresh_from_db()
    return model.status, model.updated_at, model.approvals.count(), model.events.count()


# --- reading ----------------------------------------------------------------------------------


def test_versions_list_rules_thresholds_status_and_approvals(marketer, marketing_manager):
    pending = proposal(marketer)
    scoring.scoring_model_approve(model=pending, by=marketing_manager, note="fine by me")

    response = client("scoring:read").get(f"{BASE}/versions/")

    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()["results"]}
    assert rows[pending.pk]["status"] == "proposed"
    assert rows[pending.pk]["thresholds"]["mql_total"] == 90
    assert rows[pending.pk]["rules"]["fit"] == pending.fit_rules
    assert rows[pending.pk]["approvals"] == [
        {
            "by": "marketing_manager",
            "role": "marketing_manager",
            "note": "fine by me",
            "at": rows[pending.pk]["approvals"][0]["at"],
        }
    ]
    assert "mql_total" in rows[pending.pk]["diff_summary"]
    assert rows[active_version().pk]["status"] == "active"


def test_versions_list_runs_a_fixed_number_of_queries(
    marketer, marketing_manager, django_assert_num_queries
):
    api = client("scoring:read")
    api.get(f"{BASE}/versions/")  # the key's first use records it once
    with django_assert_num_queries(4) as few:
        api.get(f"{BASE}/versions/")
    for n in range(3):
        model = draft(marketer, mql_total=80 + n)
        scoring.scoring_model_propose(model=model, by=marketer)
        scoring.scoring_model_approve(model=model, by=marketing_manager)
    with django_assert_num_queries(len(few.captured_queries)):
        response = api.get(f"{BASE}/versions/")
    assert response.json()["count"] == 4


def test_a_version_and_the_active_one_read_with_their_history(marketer):
    pending = proposal(marketer)
    api = client("scoring:read")

    one = api.get(f"{BASE}/versions/{pending.pk}/").json()
    active = api.get(f"{BASE}/active/").json()

    assert one["status"] == "proposed"
    assert [e["action"] for e in one["events"]] == ["created", "edited", "proposed"]
    assert one["events"][-1]["by"] == "marketer"
    assert one["diff"] == pending.diff
    assert active["id"] == active_version().pk and active["status"] == "active"
    assert_problem(api.get(f"{BASE}/versions/999999/"), 404)


def test_status_filter_and_a_bad_one(marketer):
    pending = proposal(marketer)
    api = client("scoring:read")

    proposed = api.get(f"{BASE}/versions/", {"status": "proposed"}).json()["results"]
    bad = assert_problem(api.get(f"{BASE}/versions/", {"status": "shiny"}), 400)

    assert [row["id"] for row in proposed] == [pending.pk]
    assert "status" in bad["errors"]


@pytest.mark.parametrize("path", ["/versions/", "/versions/{pk}/", "/active/"])
def test_reading_needs_scoring_read(path):
    url = BASE + path.format(pk=active_version().pk)

    body = assert_problem(client("kpis:read", "scoring:approve").get(url), 403)

    assert "scoring:read" in body["detail"]
    assert "results" not in body and "rules" not in body


def test_a_key_acting_as_someone_without_a_team_role_reads_nothing():
    outsider = UserFactory(username="nobody", role="")

    assert_problem(client("scoring:read", as_user=outsider).get(f"{BASE}/versions/"), 403)


# --- propose and withdraw ---------------------------------------------------------------------


def test_marketing_proposes_a_draft_through_the_sign_off(marketer):
    model = draft(marketer)

    response = client("scoring:approve", as_user=marketer).post(
        f"{BASE}/versions/{model.pk}/propose/", {"note": "lower the bar"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "proposed"
    event = ScoringModelEvent.objects.filter(model=model).latest("id")
    assert (event.action, event.by, event.note) == (ModelAction.PROPOSED, marketer, "lower the bar")


def test_a_key_of_its_own_proposes_as_a_named_system(marketer):
    model = draft(marketer)

    response = client("scoring:approve").post(f"{BASE}/versions/{model.pk}/propose/")

    assert response.status_code == 200, response.content
    event = ScoringModelEvent.objects.filter(model=model).latest("id")
    assert (event.by, event.by_system) == (None, "api:crm")


def test_a_rep_may_not_propose_and_nothing_changes(marketer, rep):
    model = draft(marketer)
    before = state(model)

    response = client("scoring:approve", as_user=rep).post(f"{BASE}/versions/{model.pk}/propose/")

    assert "marketing" in assert_problem(response, 403)["detail"]
    assert state(model) == before


def test_proposing_a_proposal_is_refused_with_the_services_sentence(marketer):
    model = proposal(marketer)
    before = state(model)

    response = client("scoring:approve", as_user=marketer).post(
        f"{BASE}/versions/{model.pk}/propose/"
    )

    body = assert_problem(response, 400)
    assert "cannot become Proposed" in body["detail"]
    assert body["errors"]["status"] == [body["detail"]]
    assert state(model) == before


def test_withdrawing_drops_the_approvals(marketer, marketing_manager):
    model = proposal(marketer)
    scoring.scoring_model_approve(model=model, by=marketing_manager)

    response = client("scoring:approve", as_user=marketer).post(
        f"{BASE}/versions/{model.pk}/withdraw/", {"note": "one more rule"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "draft"
    assert response.json()["approvals"] == []


def test_withdrawing_needs_a_person(marketer):
    model = proposal(marketer)

    body = assert_problem(
        client("scoring:approve").post(f"{BASE}/versions/{model.pk}/withdraw/"), 403
    )

    assert "needs a person" in body["detail"]
    assert state(model)[0] == ModelStatus.PROPOSED


# --- approve and send back --------------------------------------------------------------------


def test_a_marketing_and_a_sales_manager_approving_put_the_version_in_force(
    marketer, marketing_manager, sales_manager
):
    old = active_version()
    model = proposal(marketer)

    first = approve(client("scoring:approve", as_user=marketing_manager), model, note="ok")
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "proposed"
    second = approve(client("scoring:approve", as_user=sales_manager), model)

    assert second.status_code == 200, second.content
    assert second.json()["status"] == "active"
    assert {a["role"] for a in second.json()["approvals"]} == {
        "marketing_manager",
        "sales_manager",
    }
    old.refresh_from_db()
    assert old.status == ModelStatus.RETIRED
    assert active_version() == model
    # as on the pages: the activation queues a full rescore with the new version
    assert ScoringRun.objects.filter(model=model, kind=RunKind.ACTIVATION).count() == 1
    assert client("scoring:read").get(f"{BASE}/active/").json()["id"] == model.pk


@pytest.mark.parametrize("who", ["rep", "marketer", "admin"])
def test_only_the_two_managers_may_approve_or_send_back(people, who):
    model = proposal(people["marketer"])
    before = state(model)
    api = client("scoring:approve", as_user=people[who])

    approved = approve(api, model)
    sent_back = api.post(f"{BASE}/versions/{model.pk}/send-back/", {"note": "no"}, format="json")

    assert assert_problem(approved, 403)["detail"] == APPROVERS_ONLY
    assert assert_problem(sent_back, 403)["detail"] == APPROVERS_ONLY
    assert state(model) == before


def test_a_key_acting_as_nobody_may_not_approve(marketer):
    model = proposal(marketer)
    before = state(model)

    body = assert_problem(approve(client("scoring:approve"), model), 403)

    assert "needs a person" in body["detail"]
    assert state(model) == before


def test_approving_needs_the_approve_scope_even_for_a_manager(marketer, marketing_manager):
    model = proposal(marketer)
    before = state(model)

    body = assert_problem(approve(client("scoring:read", as_user=marketing_manager), model), 403)

    assert "scoring:approve" in body["detail"]
    assert state(model) == before


def test_approving_what_changed_since_it_was_read_is_refused(marketer, marketing_manager):
    model = proposal(marketer)
    read_at = model.updated_at.isoformat()
    scoring.scoring_model_withdraw(model=model, by=marketer)
    scoring.scoring_model_propose(model=model, by=marketer)
    before = state(model)

    response = client("scoring:approve", as_user=marketing_manager).post(
        f"{BASE}/versions/{model.pk}/approve/", {"read_at": read_at}, format="json"
    )

    assert "changed after you opened it" in assert_problem(response, 400)["detail"]
    assert state(model) == before


@pytest.mark.parametrize(
    "read_at",
    [None, "", "2026-11-18T10:00:00", "yesterday"],
    ids=["missing", "empty", "naive", "x"],
)
def test_an_approval_names_the_version_it_read_with_an_offset(marketer, marketing_manager, read_at):
    model = proposal(marketer)
    before = state(model)
    body = {} if read_at is None else {"read_at": read_at}

    response = client("scoring:approve", as_user=marketing_manager).post(
        f"{BASE}/versions/{model.pk}/approve/", body, format="json"
    )

    assert "read_at" in assert_problem(response, 400)["errors"]
    assert state(model) == before


def test_approving_a_draft_or_twice_is_refused(marketer, marketing_manager):
    api = client("scoring:approve", as_user=marketing_manager)
    a_draft = draft(marketer)
    model = proposal(marketer)
    assert approve(api, model).status_code == 200

    not_proposed = assert_problem(approve(api, a_draft), 400)
    twice = assert_problem(approve(api, model), 400)

    assert "only a proposed version can be approved" in not_proposed["detail"]
    assert "status" in not_proposed["errors"]
    assert "already approved" in twice["detail"]
    assert ScoringApproval.objects.filter(model=model).count() == 1


def test_a_manager_sends_a_proposal_back_saying_why(marketer, sales_manager):
    model = proposal(marketer)
    api = client("scoring:approve", as_user=sales_manager)

    no_reason = api.post(f"{BASE}/versions/{model.pk}/send-back/", {"note": " "}, format="json")
    assert assert_problem(no_reason, 400)["errors"] == {
        "note": ["Say why the proposal is sent back."]
    }
    assert state(model)[0] == ModelStatus.PROPOSED

    response = api.post(
        f"{BASE}/versions/{model.pk}/send-back/", {"note": "too many MQLs"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "draft"
    assert response.json()["events"][-1]["note"] == "too many MQLs"


def test_a_retried_approval_with_the_same_idempotency_key_approves_once(
    marketer, marketing_manager
):
    model = proposal(marketer)
    api = client("scoring:approve", as_user=marketing_manager)
    api.credentials(
        HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"], HTTP_IDEMPOTENCY_KEY="a-1"
    )

    first = approve(api, model)
    again = approve(api, model)

    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert ScoringApproval.objects.filter(model=model).count() == 1


def test_a_signed_in_manager_approves_with_the_session(marketer, sales_manager):
    model = proposal(marketer)
    client_session = APIClient()
    client_session.force_login(sales_manager)

    response = approve(client_session, model)

    assert response.status_code == 200, response.content
    assert response.json()["approvals"][0]["by"] == "sales_manager"
