"""The win story in the browser: the owner of a won lead ticks what convinced them and the
content that helped, a missing sentence for "Other" is explained on a small page with a back
link, the told story shows on the lead page and on the Wins page; at 1366 and 390 px."""

import pytest

from content.models import DealStory
from tests.browser.conftest import login, screenshot
from tests.content.test_stories_data import asset, close

pytestmark = pytest.mark.browser


def test_the_owner_tells_why_the_deal_was_won(page, rep, marketer):
    helped = asset("Bank case study")
    asset("Pricing one-pager")
    won = close(owner=rep, company="Initech")
    prefix = f"story{won.pk}"
    login(page, "rep")
    page.goto(f"/leads/{won.lead_id}/")
    page.wait_for_selector("#story h2:has-text('What convinced them?')")
    screenshot(page, "story-ask-1366")

    page.check(f"#story input[name='{prefix}-reasons'][value='other']")
    page.click("#story button[type=submit]")
    page.wait_for_selector("text=say in one sentence what it was")
    assert page.locator("#story-back").count() == 1
    screenshot(page, "story-error-1366")

    page.check(f"#story input[name='{prefix}-reasons'][value='proof']")
    page.fill(f"#id_{prefix}-sentence", "The bank case study settled it.")
    page.check(f"#story input[name='{prefix}-assets'][value='{helped.pk}']")
    page.click("#story button[type=submit]")
    page.wait_for_selector("text=the story is recorded")
    story = DealStory.objects.get()
    assert sorted(r.code for r in story.reasons.all()) == ["other", "proof"]
    card = page.locator("#story").inner_text()
    assert "The bank case study settled it." in card and "Bank case study" in card
    screenshot(page, "story-told-1366")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/leads/{won.lead_id}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "story-told-390")

    login(page, "marketer")
    page.goto("/leads/wins/")
    page.wait_for_selector(".win-story")
    assert "The bank case study settled it." in page.locator(".win-story").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "story-wins-390")
