"""The draft editor's preview on the holdout in a real browser, on a desktop and on a phone, and
the calibrated line on a lead page. Screenshots land in /tmp/shots/."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone

from leads import services
from leads.models import Stage
from leads.scoring import services as scoring
from leads.scoring.models import ModelStatus, ScoringModel
from tests.factories import LeadFactory
from tests.leads.test_draft_preview import PLAN_RULES, _decided

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")


@pytest.fixture
def draft(marketer):
    created = timezone.now() - dt.timedelta(days=30)
    _decided("pro", won=100, lost=50, created=created)
    _decided("free", won=50, lost=100, created=created)
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    return scoring.scoring_model_copy(model=active, by=marketer, name="Plan matters")


def _type_the_plan_rule(page) -> None:
    for name, value in (
        ("mql_total", "50"),
        ("mql_fit", "50"),
        ("grade_a", "50"),
        ("grade_b", "30"),
        ("grade_c", "10"),
        ("fit_rules", PLAN_RULES),
        ("engagement_rules", "[]"),
        ("group_caps", "{}"),
    ):
        page.fill(f"#id_{name}", value)


@pytest.mark.parametrize("width", [1366, 390])
def test_a_marketer_previews_a_typed_draft_on_the_holdout(page, draft, width):
    _login(page, "marketer")
    page.set_viewport_size({"width": width, "height": 844 if width < 760 else 800})
    page.goto(f"/leads/scoring/{draft.pk}/edit/")
    page.wait_for_selector("#draft-form")
    _type_the_plan_rule(page)
    page.fill("#id_name", "Plan matters (typed)")
    page.click("#preview-button")
    page.wait_for_selector("#preview table")
    text = page.inner_text("#preview")
    assert "on the 90 holdout leads" in text
    assert "This draft ranks the holdout leads better than v" in text
    assert "Expected MQLs per month" in text
    # the preview is in view after the post, and the typing is still in the boxes
    assert page.locator("#preview").is_visible()
    box = page.locator("#preview").bounding_box()
    assert box is not None and box["y"] < page.viewport_size["height"]
    assert page.input_value("#id_name") == "Plan matters (typed)"
    assert "attributes.plan" in page.input_value("#id_fit_rules")
    _shot(page, f"draft-preview-{width}")
    page.locator("#preview").screenshot(path=str(SHOTS / f"draft-preview-block-{width}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert ScoringModel.objects.get(pk=draft.pk).name == "Plan matters"

    # a broken box: the message in place and in the preview block, no figures
    page.fill("#id_fit_rules", '[{"field": "title",}]')
    page.click("#preview-button")
    page.wait_for_selector("#preview .errorlist")
    assert "not valid JSON" in page.inner_text("#field-fit_rules .errorlist")
    assert page.locator("#preview table").count() == 0
    _shot(page, f"draft-preview-error-{width}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # saving from the previewed editor still works
    page.fill("#id_fit_rules", PLAN_RULES)
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=saved")
    assert ScoringModel.objects.get(pk=draft.pk).name == "Plan matters (typed)"


def test_the_lead_page_says_how_often_leads_like_it_were_won(page, marketer, rep):
    cache.clear()  # the counts are cached per version id, and ids repeat between test databases
    leads = LeadFactory.create_batch(
        31, stage=Stage.OPPORTUNITY, owner=rep, deal_value=1000, title="CEO", country="US"
    )
    scoring.leads_rescore(lead_ids=[lead.pk for lead in leads])
    for lead in leads[:20]:
        services.lead_move(lead=lead, to=Stage.WON, by=rep, deal_value="1000")
    for lead in leads[20:30]:
        services.lead_move(lead=lead, to=Stage.LOST, by=rep, reason="price")
    leads[30].refresh_from_db()
    _login(page, "marketer")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/leads/{leads[30].pk}/")
    grade = leads[30].grade
    assert page.inner_text("#calibration").startswith(
        f"Leads like this one (grade {grade}) won 67% of the time (n = 30)."
    )
    _shot(page, "lead-calibration-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    page.goto(f"/leads/scoring/{active.pk}/")
    assert f"Grade {grade}\t67% won (n = 30)" in page.inner_text("#calibration")
    page.locator("#calibration").screenshot(path=str(SHOTS / "version-calibration-390.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
