import pytest
from django.urls import reverse

from leads.scoring import services as scoring
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.rules import spec_of

pytestmark = pytest.mark.django_db


def _draft(by) -> ScoringModel:
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=by, name="Lower bar")
    scoring.scoring_model_update(
        model=draft, by=by, spec={**spec_of(draft), "mql_total": active.mql_total - 10}
    )
    return draft


def _post(client, model, action, note=""):
    return client.post(
        reverse("leads:scoring_model_decide", args=[model.pk, action]), {"note": note}
    )


def test_list_shows_the_active_model_and_pending_proposals(client, marketer, rep):
    draft = _draft(marketer)
    scoring.scoring_model_propose(model=draft, by=marketer)
    client.force_login(rep)
    body = client.get(reverse("leads:scoring")).content.decode()
    assert "In force" in body
    assert "Lower bar" in body and "mql_total" in body


def test_marketer_proposes_then_both_managers_sign_off_from_the_page(
    client, marketer, marketing_manager, sales_manager, django_capture_on_commit_callbacks
):
    draft = _draft(marketer)
    client.force_login(marketer)
    assert _post(client, draft, "propose").status_code == 302
    assert ScoringModel.objects.get(pk=draft.pk).status == ModelStatus.PROPOSED

    client.force_login(marketing_manager)
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert "Approve" in page and "mql_total" in page
    assert _post(client, draft, "approve", "fine by marketing").status_code == 302
    assert ScoringModel.objects.get(pk=draft.pk).status == ModelStatus.PROPOSED

    client.force_login(sales_manager)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, draft, "approve").status_code == 302
    assert ScoringModel.objects.get(pk=draft.pk).status == ModelStatus.ACTIVE
    assert ScoringModel.objects.filter(status=ModelStatus.ACTIVE).count() == 1


def test_the_same_manager_cannot_approve_twice(client, marketer, marketing_manager):
    draft = _draft(marketer)
    scoring.scoring_model_propose(model=draft, by=marketer)
    client.force_login(marketing_manager)
    _post(client, draft, "approve")
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert ">Approve<" not in page  # already given
    response = _post(client, draft, "approve")
    assert response.status_code == 400
    assert draft.approvals.count() == 1


@pytest.mark.parametrize("who", ["rep", "marketer", "admin"])
def test_only_managers_may_approve_from_the_page(client, people, who):
    draft = _draft(people["marketing_manager"])
    scoring.scoring_model_propose(model=draft, by=people["marketing_manager"])
    client.force_login(people[who])
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert ">Approve<" not in page
    response = _post(client, draft, "approve")
    assert response.status_code == 400
    assert "may not" in response.content.decode()
    assert not draft.approvals.exists()


def test_send_back_needs_a_reason_and_returns_to_draft(client, marketer, sales_manager):
    draft = _draft(marketer)
    scoring.scoring_model_propose(model=draft, by=marketer)
    client.force_login(sales_manager)
    response = _post(client, draft, "send-back", "Too many MQLs for our team size")
    assert response.status_code == 302
    assert ScoringModel.objects.get(pk=draft.pk).status == ModelStatus.DRAFT


def test_outsider_sees_nothing(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("leads:scoring")).status_code == 403


def test_send_back_without_a_reason_is_a_form_error(client, marketer, sales_manager):
    draft = _draft(marketer)
    scoring.scoring_model_propose(model=draft, by=marketer)
    client.force_login(sales_manager)
    response = _post(client, draft, "send-back")
    assert response.status_code == 400
    assert "Say why" in response.content.decode()
    assert ScoringModel.objects.get(pk=draft.pk).status == ModelStatus.PROPOSED
