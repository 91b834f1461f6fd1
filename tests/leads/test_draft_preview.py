"""The draft editor's live preview: the typed draft on the holdout leads, scored as fine-tuning
scores a proposal, next to the active version; the editor's preview button and its errors.

The leads: 300 decided leads of one profile (the shipped default model gives every one of them
the same fit, so it cannot rank them: AUC 0.5), whose outcome depends on the attribute `plan`:
pro 100 won / 50 lost, free 50 won / 100 lost. The draft gives `plan = pro` 50 points and makes
those leads grade A and MQLs. Plus 20 open leads created 10 days ago and 10 created 200 days ago."""

import datetime as dt
import html

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Lead, ScoringModelEvent, Stage
from leads.scoring import services as scoring
from leads.scoring.forms import DraftForm
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.rules import spec_of, validate_spec
from leads.scoring.tuning.evaluate import DAYS_PER_MONTH
from leads.scoring.tuning.learn import stratified_split
from leads.scoring.tuning.preview import PreviewError, holdout_of, scoring_spec_preview
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

PLAN_RULES = '[{"field": "attributes.plan", "op": "eq", "value": "pro", "points": 50}]'


def _decided(plan: str, *, won: int, lost: int, created: dt.datetime) -> None:
    decided = timezone.now() - dt.timedelta(days=5)
    for is_won, count in ((True, won), (False, lost)):
        LeadFactory.create_batch(
            count,
            stage=Stage.WON if is_won else Stage.LOST,
            stage_changed_at=decided,
            won_at=decided if is_won else None,
            lost_at=None if is_won else decided,
            created_at=created,
            attributes={"plan": plan},
        )


@pytest.fixture
def outcomes():
    now = timezone.now()
    _decided("pro", won=100, lost=50, created=now - dt.timedelta(days=30))
    _decided("free", won=50, lost=100, created=now - dt.timedelta(days=30))
    LeadFactory.create_batch(20, created_at=now - dt.timedelta(days=10))
    LeadFactory.create_batch(10, created_at=now - dt.timedelta(days=200))


def _held(share: float = 0.3, seed: int = 0) -> dict[str, int]:
    """The holdout fine-tuning draws, counted by hand: (plan, won) -> leads."""
    rows = list(
        Lead.objects.filter(stage__in=(Stage.WON, Stage.LOST))
        .order_by("pk")
        .values_list("attributes", "stage")
    )
    y = np.array([stage == Stage.WON for _a, stage in rows], dtype=np.int8)
    _train, hold = stratified_split(y, share=share, seed=seed)
    counts = {("pro", True): 0, ("pro", False): 0, ("free", True): 0, ("free", False): 0}
    for i in hold:
        counts[(rows[i][0]["plan"], bool(y[i]))] += 1
    return counts


def _draft(by) -> ScoringModel:
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    return scoring.scoring_model_copy(model=active, by=by, name="Plan matters")


def _spec(**changes) -> dict:
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    spec = {
        **spec_of(active),
        "mql_total": 50,
        "mql_fit": 50,
        "grade_a": 50,
        "grade_b": 30,
        "grade_c": 10,
        "group_caps": {},
        "fit_rules": [
            {"field": "attributes.plan", "op": "eq", "value": "pro", "points": 50},
        ],
        "engagement_rules": [],
    }
    return validate_spec(spec | changes)


def test_the_draft_and_the_active_version_on_the_same_holdout(outcomes):
    now = timezone.now()
    preview = scoring_spec_preview(_spec(), outcome="won", holdout=0.3, seed=0, now=now)
    n = _held()
    pro_won, pro_lost = n[("pro", True)], n[("pro", False)]
    free_won, free_lost = n[("free", True)], n[("free", False)]
    assert pro_won + free_won == 45 and pro_lost + free_lost == 45
    assert preview["leads"] == {
        "positives": 150,
        "negatives": 150,
        "holdout": 90,
        "holdout_positives": 45,
    }
    # a pro lead outranks a free one; two of the same plan tie (a half)
    auc = (pro_won * free_lost + 0.5 * (pro_won * pro_lost + free_won * free_lost)) / 45**2
    draft, active = preview["draft"], preview["active"]
    assert draft["auc"] == round(auc, 4)
    assert active["auc"] == 0.5  # one fit for every lead: it cannot rank them
    pro = pro_won + pro_lost
    grade_a = draft["grades"][0]
    assert (grade_a["grade"], grade_a["leads"], grade_a["positives"]) == ("A", pro, pro_won)
    assert grade_a["text"] == (
        f"{100 * pro / 90:.0f}% of the holdout · {100 * pro_won / pro:.0f}% won (n = {pro})"
    )
    assert [g["leads"] for g in draft["grades"]] == [pro, 0, 0, 90 - pro]
    assert [g["leads"] for g in active["grades"]] == [0, 90, 0, 0]  # fit 55 is a B
    assert draft["mql"]["qualified"] == pro and active["mql"]["qualified"] == 0
    # 320 leads arrived in the last 90 days (not the 10 from 200 days ago)
    assert preview["leads_per_month"] == round(320 / (90 / DAYS_PER_MONTH), 1)
    assert draft["mqls_per_month"] == round(round(pro / 90, 4) * 320 / (90 / DAYS_PER_MONTH), 1)
    assert active["mqls_per_month"] == 0
    assert preview["comparison"]["level"] == "better"
    assert preview["comparison"]["message"].startswith(
        f"This draft ranks the holdout leads better than {active['label']}: AUC {auc:.3f} "
        "against 0.500"
    )


def test_a_draft_equal_to_the_active_version_previews_exactly_as_it(outcomes):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    preview = scoring_spec_preview(
        spec_of(active), outcome="won", holdout=0.25, seed=2, now=timezone.now()
    )
    assert preview["leads"]["holdout"] == round(0.25 * 150) * 2
    draft, current = preview["draft"], preview["active"]
    assert (draft["label"], current["label"]) == ("This draft", active.label)
    assert {k: v for k, v in draft.items() if k != "label"} == {
        k: v for k, v in current.items() if k != "label"
    }
    assert preview["comparison"]["message"] == (
        f"This draft ranks the holdout leads exactly as {active.label} does: AUC 0.500."
    )


def test_with_no_lead_in_the_last_90_days_it_cannot_say_how_many_mqls(outcomes):
    later = timezone.now() + dt.timedelta(days=365)
    preview = scoring_spec_preview(_spec(), outcome="won", holdout=0.3, seed=0, now=later)
    assert preview["leads_per_month"] is None
    assert preview["draft"]["mqls_per_month"] is None
    assert preview["draft"]["auc"] is not None


def test_too_few_outcomes_is_a_readable_refusal():
    _decided("pro", won=49, lost=80, created=timezone.now())
    with pytest.raises(PreviewError, match="Too few outcomes to preview on: 49 leads won and 80"):
        scoring_spec_preview(_spec(), outcome="won", holdout=0.3, seed=0, now=timezone.now())


def test_a_draft_copied_from_a_tuned_version_keeps_its_holdout(marketer):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    report = {"kind": "tuning", "outcome": "accepted", "seed": 3, "holdout_share": 0.2}
    tuned = scoring.scoring_model_create(
        name="Tuned", spec=spec_of(active), by=marketer, report=report, origin="tuning"
    )
    copied = scoring.scoring_model_copy(model=tuned, by=marketer)
    assert holdout_of(copied) == {
        "outcome": "accepted",
        "holdout": 0.2,
        "seed": 3,
        "from_report": tuned.label,
    }
    hand_written = _draft(marketer)
    assert holdout_of(hand_written) == {
        "outcome": "won",
        "holdout": 0.3,
        "seed": 0,
        "from_report": None,
    }


# --- the editor ---------------------------------------------------------------------------------


def _typed(model: ScoringModel, **changes) -> dict:
    form = DraftForm.for_model(model)
    return {name: form.initial[name] for name in form.fields} | changes


def _preview(client, model, data):
    return client.post(reverse("leads:scoring_edit_preview", args=[model.pk]), data)


def test_the_editor_has_a_preview_button_that_posts_the_form(client, marketer):
    draft = _draft(marketer)
    client.force_login(marketer)
    page = client.get(reverse("leads:scoring_model_edit", args=[draft.pk])).content.decode()
    url = reverse("leads:scoring_edit_preview", args=[draft.pk])
    assert f'formaction="{url}#preview"' in page
    assert 'id="preview"' not in page  # no figures before asking


def test_previewing_shows_the_figures_keeps_the_typing_and_saves_nothing(
    client, marketer, outcomes
):
    draft = _draft(marketer)
    before = (spec_of(draft), draft.updated_at, ScoringModelEvent.objects.count())
    client.force_login(marketer)
    data = _typed(
        draft,
        name="Typed, not saved",
        mql_total=50,
        mql_fit=50,
        grade_a=50,
        grade_b=30,
        grade_c=10,
        fit_rules=PLAN_RULES,
        engagement_rules="[]",
        group_caps="{}",
    )
    response = _preview(client, draft, data)
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    n = _held()
    pro = n[("pro", True)] + n[("pro", False)]
    auc = (
        n[("pro", True)] * n[("free", False)]
        + 0.5 * (n[("pro", True)] * n[("pro", False)] + n[("free", True)] * n[("free", False)])
    ) / 45**2
    assert "on the 90 holdout leads: 30% of the 300 leads won or lost, seed 0" in page
    assert f"<td>{auc:.3f}</td><td>0.500</td>" in page
    assert f"{100 * pro / 90:.0f}% of the holdout · {100 * n[('pro', True)] / pro:.0f}% won" in page
    assert "This draft ranks the holdout leads better than" in page
    mqls = round(round(pro / 90, 4) * 320 / (90 / DAYS_PER_MONTH), 1)
    assert f'<td id="preview-mqls">{mqls:g}</td>' in page
    assert 'value="Typed, not saved"' in page and "attributes.plan" in page
    draft.refresh_from_db()
    assert (spec_of(draft), draft.updated_at, ScoringModelEvent.objects.count()) == before
    assert draft.name == "Plan matters"


def test_an_invalid_draft_is_shown_in_place_and_not_previewed(client, marketer, outcomes):
    draft = _draft(marketer)
    client.force_login(marketer)
    response = _preview(client, draft, _typed(draft, fit_rules='[{"field": "title",}]'))
    page = html.unescape(response.content.decode())
    assert response.status_code == 400
    assert page.count("This is not valid JSON") == 2  # next to the box, and in the preview block
    assert "Nothing to preview until the draft is valid" in page
    assert "holdout leads:" not in page
    response = _preview(client, draft, _typed(draft, grade_a=1, grade_b=50))
    assert response.status_code == 400
    assert "must not increase from A to C" in html.unescape(response.content.decode())


def test_too_few_outcomes_is_a_message_on_the_editor_not_an_error_page(client, marketer):
    draft = _draft(marketer)
    client.force_login(marketer)
    response = _preview(client, draft, _typed(draft))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "Too few outcomes to preview on: 0 leads won and 0 lost" in page
    assert 'id="draft-form"' in page


def test_sales_cannot_preview_and_a_proposal_is_not_previewed(
    client, marketer, sales_manager, marketing_manager
):
    draft = _draft(marketer)
    client.force_login(sales_manager)
    assert _preview(client, draft, _typed(draft)).status_code == 403
    scoring.scoring_model_update(model=draft, by=marketer, spec=_spec())
    scoring.scoring_model_propose(model=draft, by=marketer)
    client.force_login(marketing_manager)
    response = _preview(client, draft, _typed(draft))
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:scoring_model", args=[draft.pk])
