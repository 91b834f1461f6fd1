import pytest

from leads.scoring.models import ModelStatus, ScoringModel
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def _login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")


def test_a_marketer_copies_the_active_version_lowers_the_bar_and_proposes_it(page, marketer):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    lower = active.mql_total - 15
    _login(page, "marketer")
    page.goto("/leads/scoring/")
    page.click("button:has-text('Copy to a draft')")
    page.wait_for_selector("#draft-form")
    draft = ScoringModel.objects.get(status=ModelStatus.DRAFT)
    screenshot(page, "scoring-editor-1366")

    # a broken rule is refused in place and the typed values stay
    page.fill("#id_name", "Lower MQL bar")
    page.fill("#id_mql_total", str(lower))
    rules = page.input_value("#id_fit_rules")
    page.fill("#id_fit_rules", rules.replace('"op": "', '"op": "x', 1))
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("#field-fit_rules .errorlist")
    assert "Fit rule 1" in page.inner_text("#field-fit_rules .errorlist")
    assert page.input_value("#id_mql_total") == str(lower)
    screenshot(page, "scoring-editor-error-1366")
    assert ScoringModel.objects.get(pk=draft.pk).mql_total == active.mql_total

    page.fill("#id_fit_rules", rules)
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=saved")
    diff = page.inner_text("#diff")
    assert f"mql_total {active.mql_total} → {lower}" in diff
    screenshot(page, "scoring-draft-diff-1366")

    page.click("button:has-text('Propose for sign-off')")
    page.wait_for_selector("text=proposed for sign-off")
    draft.refresh_from_db()
    assert draft.status == ModelStatus.PROPOSED and draft.mql_total == lower
    assert draft.name == "Lower MQL bar"


def test_the_editor_fits_a_phone(page, marketer):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    _login(page, "marketer")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/leads/scoring/{active.pk}/")
    page.click("button:has-text('Copy to a draft')")
    page.wait_for_selector("#draft-form")
    for summary in page.locator("summary").all():
        summary.click()  # the examples open without widening the page
    screenshot(page, "scoring-editor-390")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=saved")
    screenshot(page, "scoring-draft-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
