"""A rep finds the suggested case study on his lead and shares it in one click; the library and
an asset's page read at 1366 and at 390 px (screenshots in var/screenshots/)."""

import pytest

from content.models import Asset, AssetUse
from leads.models import Stage
from tests.browser.conftest import login, screenshot
from tests.factories import LeadFactory

pytestmark = pytest.mark.browser


def fits(tab) -> bool:
    return tab.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_rep_shares_a_suggested_asset_and_browses_the_library(page, rep, marketer):
    story = Asset.objects.create(
        title="How Northbank cut onboarding to a day",
        kind="case_study",
        funnel_stage="consideration",
        industries=["banking"],
        personas=["cfo", "it manager"],
        url="https://example.com/a-rather-long-address/for-the-northbank-case-study",
        sales_ready=True,
        owner=marketer,
    )
    for n in range(4):
        Asset.objects.create(
            title=f"Banking one-pager {n}",
            kind="one_pager",
            funnel_stage="awareness",
            industries=["banking", "insurance"],
            url=f"https://example.com/{n}",
            sales_ready=n != 3,
            owner=marketer,
        )
    lead = LeadFactory(
        owner=rep, industry="Banking", title="CFO", stage=Stage.SQL, first_name="Ada"
    )
    login(page, "rep")
    page.goto(f"/leads/{lead.pk}/")
    card = page.locator("#suggested-content")
    assert "How Northbank cut onboarding to a day" in card.inner_text()
    assert "For Banking · for CFO · fits the consideration stage" in card.inner_text()
    card.screenshot(path=str(screenshot(page, "library-suggested")))
    page.click(f"#suggested-{story.pk} button[type=submit]")
    page.wait_for_selector("text=is shared with")
    assert AssetUse.objects.get().asset == story
    assert "Shared " in page.inner_text(f"#suggested-{story.pk}")
    page.set_viewport_size({"width": 390, "height": 844})
    assert fits(page)
    page.locator("#suggested-content").screenshot(
        path=str(screenshot(page, "library-suggested-phone"))
    )

    page.set_viewport_size({"width": 1366, "height": 800})
    page.goto("/content/")
    assert page.locator("#assets tbody tr").count() == 4  # sales ready only
    screenshot(page, "library")
    page.select_option("#id_ready", "all")
    page.click(".library-filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#assets tbody tr").count() == 5
    page.set_viewport_size({"width": 390, "height": 844})
    assert fits(page)
    screenshot(page, "library-phone")
    page.goto(f"/content/{story.pk}/")
    assert fits(page)
    assert "Ada" in page.inner_text("#asset-shares")
    screenshot(page, "library-asset-phone")


def test_marketing_sees_an_upload_error_on_the_form(page, marketer, settings, tmp_path):
    settings.CONTENT_MAX_UPLOAD_BYTES = 1_000
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.7\n" + b"x" * 3_000)
    login(page, "marketer")
    page.goto("/content/new/")
    page.fill("#id_title", "Big deck")
    page.select_option("#id_kind", "deck")
    page.set_input_files("#id_file", str(big))
    page.click(".asset-form button[type=submit]")
    page.wait_for_selector(".errorlist")
    assert "the library takes files up to 1 KB" in page.inner_text(".asset-form")
    screenshot(page, "library-asset-form-error")
    page.set_viewport_size({"width": 390, "height": 844})
    assert fits(page)
    screenshot(page, "library-asset-form-phone")
    assert not Asset.objects.exists()
