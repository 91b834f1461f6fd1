import pytest

from leads import services
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
    page.click("a:has-text('Approve')")
    page.fill("#id_note", "Agreed in the Monday meeting")
    page.check("#id_confirm")
    page.click("button:has-text('Approve')")
    page.wait_for_selector("text=approved")
    screenshot(page, "scoring-signoff")
    assert draft.approvals.get().by == marketing_manager
    assert ScoringModel.objects.get(pk=draft.pk).status == ModelStatus.PROPOSED  # sales next


def test_a_marketer_proposes_and_sees_how_many_leads_would_qualify(page, marketer):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    # three leads with a good fit that the active bar keeps out
    for n in range(3):
        services.lead_intake(
            data={
                "email": f"lead{n}@engines.example",
                "title": "VP Engineering",
                "company_size": 350,
                "industry": "Software",
                "country": "DE",
            },
            by=marketer,
        )
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Fit alone qualifies")
    scoring.scoring_model_update(model=draft, by=marketer, spec={**spec_of(draft), "mql_total": 50})
    page.goto("/login/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.goto(f"/leads/scoring/{draft.pk}/")
    page.wait_for_selector("#preview:has-text('Not counted yet')")
    page.click("button:has-text('Propose for sign-off')")
    page.wait_for_selector("text=proposed for sign-off")
    page.reload()
    preview = page.inner_text("#preview")
    assert "3 leads in new, nurturing or recycled would meet this definition" in preview
    screenshot(page, "scoring-preview-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot(page, "scoring-preview-390")
