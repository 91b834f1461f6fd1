from pathlib import Path

import pytest

from leads.models import Lead, ScoringApproval, ScoringModel, Stage
from leads.scoring import services as scoring
from leads.scoring.models import ModelStatus
from tests.leads.test_scoring_services import SPEC, activate
from tests.leads.test_scoring_signoff import scored_leads, tuned_proposal

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")


def _login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_both_managers_see_the_warning_and_confirm_what_changes(
    page, marketer, marketing_manager, sales_manager
):
    activate(SPEC)
    leads = scored_leads()
    proposal = tuned_proposal(marketer, "worse")
    scoring.scoring_model_preview_record(model_id=proposal.pk)

    # the marketing manager, on a laptop: the warning is the first thing on the version's page
    _login(page, "marketing_manager")
    page.goto(f"/leads/scoring/{proposal.pk}/")
    warning = page.locator("#verdict[role=alert]")
    assert warning.is_visible()
    assert "scores leads worse than the version in force" in warning.inner_text()
    assert "Approving it is allowed, but" in warning.inner_text()
    _shot(page, "signoff-version-1366")
    page.click("#signoff a:has-text('Approve')")
    page.wait_for_selector("#confirm")
    assert "Approving it is allowed, but" in page.inner_text("#verdict")
    assert "+ fit: Software industry (15 points)" in page.inner_text("#rules-added")
    assert "3 leads in new, nurturing or recycled would become MQLs" in page.inner_text("#new-mqls")
    assert "6 leads would change grade" in page.inner_text("#grade-changes")
    _shot(page, "signoff-confirm-1366")
    # approving without ticking the box records nothing and says why
    page.fill("#id_note", "Worse on the holdout, but we want the software focus this quarter")
    page.click("#confirm button:has-text('Approve')")
    page.wait_for_selector("#confirm-errors")
    assert "nothing was approved" in page.inner_text("#confirm-errors")
    assert page.input_value("#id_note").startswith("Worse on the holdout")
    # the page comes back at the form, where the error is, not at its top
    assert page.evaluate(
        "document.getElementById('confirm-errors').getBoundingClientRect().top < window.innerHeight"
    )
    _shot(page, "signoff-confirm-error-1366")
    assert not ScoringApproval.objects.exists()
    page.check("#id_confirm")
    page.click("#confirm button:has-text('Approve')")
    page.wait_for_selector("text=approved; it is now Proposed")
    approval = ScoringApproval.objects.get()
    assert approval.by == marketing_manager and approval.note.startswith("Worse on the holdout")

    # the sales manager, on a phone: the same warning, and this approval activates
    page.context.clear_cookies()
    page.set_viewport_size({"width": 390, "height": 844})
    _login(page, "sales_manager")
    page.goto(f"/leads/scoring/{proposal.pk}/")
    assert page.locator("#verdict[role=alert]").is_visible()
    assert _fits(page)
    _shot(page, "signoff-version-390")
    page.click("#signoff a:has-text('Approve')")
    page.wait_for_selector("#confirm")
    assert "Yours is the second approval" in page.inner_text("#effect")
    assert _fits(page)
    _shot(page, "signoff-confirm-390")
    page.check("#id_confirm")
    page.click("#confirm button:has-text('Approve and activate')")
    page.wait_for_selector("text=approved; it is now Active")
    _shot(page, "signoff-active-390")
    assert ScoringModel.objects.get(pk=proposal.pk).status == ModelStatus.ACTIVE
    # the three new MQLs the confirmation counted
    directors = [lead.pk for lead in leads["directors"]]
    assert Lead.objects.filter(pk__in=directors, stage=Stage.MQL).count() == 3
