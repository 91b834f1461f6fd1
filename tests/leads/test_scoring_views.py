import html

import pytest
from django.test import Client
from django.urls import reverse

from leads.scoring import services as scoring
from leads.scoring.forms import DraftForm
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
    data = {"note": note}
    if action == "approve":  # the confirmation page's form: ticked, for the version as read
        read_at = ScoringModel.objects.get(pk=model.pk).updated_at.isoformat()
        data |= {"confirm": "on", "read_at": read_at}
    return client.post(reverse("leads:scoring_model_decide", args=[model.pk, action]), data)


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
    assert response.status_code == 403
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


# --- the draft editor -----------------------------------------------------------------------------


def _edit_data(model: ScoringModel, **changes) -> dict:
    form = DraftForm.for_model(model)
    return {name: form.initial[name] for name in form.fields} | changes


def test_marketer_copies_the_active_version_into_a_draft(client, marketer):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    client.force_login(marketer)
    page = client.get(reverse("leads:scoring")).content.decode()
    assert "Copy to a draft" in page
    response = client.post(reverse("leads:scoring_model_copy", args=[active.pk]))
    draft = ScoringModel.objects.get(status=ModelStatus.DRAFT)
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:scoring_model_edit", args=[draft.pk])
    assert draft.based_on == active and spec_of(draft) == spec_of(active)


def test_a_retired_version_can_be_copied_back(client, marketer, marketing_manager):
    retired = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    ScoringModel.objects.filter(pk=retired.pk).update(status=ModelStatus.RETIRED)
    client.force_login(marketing_manager)
    assert client.post(reverse("leads:scoring_model_copy", args=[retired.pk])).status_code == 302
    assert ScoringModel.objects.get(status=ModelStatus.DRAFT).based_on == retired


def test_editing_a_draft_saves_every_setting(client, marketer):
    draft = _draft(marketer)
    client.force_login(marketer)
    assert client.get(reverse("leads:scoring_model_edit", args=[draft.pk])).status_code == 200
    data = _edit_data(
        draft,
        name="Renamed",
        description="Lower bar for Q1",
        mql_total=42,
        mql_fit=11,
        grade_a=70,
        half_life_days="14.5",
        fit_rules='[{"field": "country", "op": "in", "value": ["DE", "AT"], "points": 5, '
        '"group": "geo"}]',
        engagement_rules='[{"kind": "demo_request", "points": 30}]',
        group_caps='{"geo": 4}',
    )
    response = client.post(reverse("leads:scoring_model_edit", args=[draft.pk]), data)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.name, draft.description) == ("Renamed", "Lower bar for Q1")
    assert (draft.mql_total, draft.mql_fit, draft.grade_a, draft.half_life_days) == (
        42,
        11,
        70,
        14.5,
    )
    assert draft.group_caps == {"geo": 4}
    assert [r["label"] for r in draft.fit_rules] == ["country is one of DE, AT"]
    assert [r["kind"] for r in draft.engagement_rules] == ["demo_request"]
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert 'id="diff"' in page and "mql_total" in page and "42" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fit_rules": '[{"field": "title", "op": "gte", "points": 5}]'}, "Fit rule 1"),
        ({"engagement_rules": '[{"kind": "fax", "points": 5}]'}, "unknown touchpoint kind"),
        ({"fit_rules": '[{"field": "title",}]'}, "not valid JSON"),
        ({"grade_a": 1, "grade_b": 50}, "must not increase from A to C"),
        ({"group_caps": '{"nobody": 5}'}, "which no rule uses"),
        ({"half_life_days": "0"}, "half_life_days must be"),
    ],
)
def test_an_invalid_edit_shows_the_message_keeps_the_input_and_changes_nothing(
    client, marketer, changes, message
):
    draft = _draft(marketer)
    before = spec_of(ScoringModel.objects.get(pk=draft.pk))
    client.force_login(marketer)
    data = _edit_data(draft, name="Should not stick", **changes)
    response = client.post(reverse("leads:scoring_model_edit", args=[draft.pk]), data)
    body = response.content.decode()
    assert response.status_code == 400
    assert message in html.unescape(body)
    assert "Should not stick" in body  # what was typed is still there
    draft.refresh_from_db()
    assert spec_of(draft) == before and draft.name == "Lower bar"


def test_a_proposal_cannot_be_edited_from_the_page(client, marketer):
    draft = _draft(marketer)
    scoring.scoring_model_propose(model=draft, by=marketer)
    client.force_login(marketer)
    data = _edit_data(draft, mql_total=1)
    response = client.post(reverse("leads:scoring_model_edit", args=[draft.pk]), data)
    assert response.status_code == 400
    assert "withdraw it to a draft first" in response.content.decode()
    assert ScoringModel.objects.get(pk=draft.pk).mql_total != 1


def test_marketer_discards_a_draft(client, marketer):
    draft = _draft(marketer)
    client.force_login(marketer)
    response = client.post(reverse("leads:scoring_model_discard", args=[draft.pk]))
    assert response.status_code == 302
    assert not ScoringModel.objects.filter(pk=draft.pk).exists()


def test_discarding_the_active_version_is_a_form_error(client, marketer):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    client.force_login(marketer)
    response = client.post(reverse("leads:scoring_model_discard", args=[active.pk]))
    assert response.status_code == 400
    assert "Only a draft can be discarded" in response.content.decode()
    assert ScoringModel.objects.filter(pk=active.pk, status=ModelStatus.ACTIVE).exists()


@pytest.mark.parametrize("who", ["rep", "sales_manager", "outsider"])
def test_sales_and_outsiders_see_no_edit_controls_and_get_403(client, people, who):
    draft = _draft(people["marketer"])
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    client.force_login(people[who])
    if who != "outsider":
        for url in (reverse("leads:scoring"), reverse("leads:scoring_model", args=[draft.pk])):
            page = client.get(url).content.decode()
            assert "Copy to a draft" not in page and "Edit this draft" not in page
            assert "Discard" not in page
    posts = [
        (reverse("leads:scoring_model_copy", args=[active.pk]), {}),
        (reverse("leads:scoring_model_edit", args=[draft.pk]), _edit_data(draft, mql_total=1)),
        (reverse("leads:scoring_model_discard", args=[draft.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403
    assert client.get(reverse("leads:scoring_model_edit", args=[draft.pk])).status_code == 403
    assert ScoringModel.objects.count() == 2
    assert ScoringModel.objects.get(pk=draft.pk).mql_total == active.mql_total - 10


def test_edit_posts_need_a_csrf_token(marketer):
    draft = _draft(marketer)
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    for name in ("scoring_model_copy", "scoring_model_edit", "scoring_model_discard"):
        assert client.post(reverse(f"leads:{name}", args=[draft.pk])).status_code == 403
    assert ScoringModel.objects.filter(pk=draft.pk).exists()


def test_a_count_taken_before_an_edit_is_not_shown_as_current(client, marketer):
    draft = _draft(marketer)
    scoring.scoring_model_preview_record(model_id=draft.pk)
    client.force_login(marketer)
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert "would meet this definition" in page
    data = _edit_data(draft, mql_total=draft.mql_total - 1)
    assert (
        client.post(reverse("leads:scoring_model_edit", args=[draft.pk]), data).status_code == 302
    )
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert "would meet this definition" not in page
    assert "Not counted since the last edit" in page


def test_a_save_over_a_newer_save_is_refused_and_keeps_the_newer_one(
    client, marketer, marketing_manager
):
    draft = _draft(marketer)
    opened = _edit_data(draft, mql_total=5)  # the marketer opens the editor
    scoring.scoring_model_update(model=draft, by=marketing_manager, name="Manager's version")
    client.force_login(marketer)
    response = client.post(reverse("leads:scoring_model_edit", args=[draft.pk]), opened)
    assert response.status_code == 400
    assert "was saved by" in html.unescape(response.content.decode())
    draft.refresh_from_db()
    assert draft.name == "Manager's version" and draft.mql_total != 5


def test_the_list_links_each_draft_to_its_editor_for_marketing_only(client, marketer, rep):
    draft = _draft(marketer)
    edit_url = reverse("leads:scoring_model_edit", args=[draft.pk])
    client.force_login(marketer)
    assert edit_url in client.get(reverse("leads:scoring")).content.decode()
    client.force_login(rep)
    assert edit_url not in client.get(reverse("leads:scoring")).content.decode()
