import pytest

from leads.scoring import services as scoring
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.rules import spec_of
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def test_marketing_manager_approves_a_proposal(page, marketer, marketing_manager):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Demo requests count more")
    scoring.scoring_model_update(
        model=draft, by=marketer, spec={**spec_of(draft), "mql_total": active.mql_total - 5}
    )
    scoring.scoring_model_propose(model=draft, by=marketer)
    page.goto("/login/")
    page.fill("#id_username", "marketing_manager")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.goto("/leads/scoring/")
    page.click("text=Demo requests count more")
    page.fill("#id_note", "Agreed in the Monday meeting")
    page.click("button:has-text('Approve')")
    page.wait_for_selector("text=approved")
    screenshot(page, "scoring-signoff")
    assert draft.approvals.get().by == marketing_manager
    assert ScoringModel.objects.get(pk=draft.pk).status == ModelStatus.PROPOSED  # sales next
