"""What the lead page suggests: sales-ready assets matching the lead, ranked by how often each
helped similar leads win, on a small hand-built library."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from content.models import Asset, AssetUse, DealStory, Objection
from content.suggestions import suggested_assets
from leads.models import Stage, StageChange, Touchpoint
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def asset(title, *, days_old=0, ready=True, **fields):
    fields.setdefault("kind", "case_study")
    fields.setdefault("funnel_stage", "decision")
    return Asset.objects.create(
        title=title,
        url=f"https://example.com/{title.replace(' ', '-')}",
        sales_ready=ready,
        created_at=NOW - timedelta(days=days_old),
        **fields,
    )


def used(a, lead, kind="shared", at=None):
    touchpoint = Touchpoint.objects.create(lead=lead, kind="content_shared", occurred_at=NOW)
    return AssetUse.objects.create(
        asset=a, lead=lead, touchpoint=touchpoint, kind=kind, occurred_at=at or NOW
    )


def won_story(lead, *assets):
    change = StageChange.objects.create(lead=lead, from_stage="opportunity", to_stage="won")
    story = DealStory.objects.create(lead=lead, stage_change=change, outcome="won", closed_at=NOW)
    story.assets.set(assets)
    return story


def titles(suggestions):
    return [s.asset.title for s in suggestions]


def test_matches_by_industry_persona_stage_and_objection_answer(marketer):
    lead = LeadFactory(industry="Banking", title="Senior IT Manager", stage=Stage.SQL)
    by_industry = asset("Banking story", industries=["banking"], funnel_stage="awareness")
    by_persona = asset("IT deck", personas=["it manager"], funnel_stage="awareness", days_old=1)
    by_stage = asset("Consideration guide", funnel_stage="consideration", days_old=2)
    answer = asset("Pricing explained", funnel_stage="awareness", days_old=3)
    asset("Retail story", industries=["retail"], funnel_stage="decision")  # matches nothing
    asset("Banking draft", industries=["banking"], ready=False)  # not sales ready
    asset("CTO deck", personas=["cto"], funnel_stage="awareness")  # not in "director"
    other = LeadFactory()
    Objection.objects.create(lead=other, category="price", text="too dear", answer=answer)
    Objection.objects.create(lead=lead, category="price", text="What does it cost?")

    found = {s.asset.title: s for s in suggested_assets(lead=lead, limit=10)}

    assert set(found) == {"Banking story", "IT deck", "Consideration guide", "Pricing explained"}
    assert found["Banking story"].reasons == ["for Banking"]
    assert found["IT deck"].reasons == ["for IT Manager"]
    assert found["Consideration guide"].reasons == ["fits the consideration stage"]
    assert found["Pricing explained"].reasons == ["answers a price objection"]
    assert {s.score for s in found.values()} == {1}
    assert by_industry and by_persona and by_stage


def test_a_persona_is_a_whole_word_of_the_title():
    lead = LeadFactory(title="Director of Finance", industry="", stage=Stage.REJECTED)
    asset("CTO deck", personas=["cto"])
    asset("Finance deck", personas=["finance"])
    assert titles(suggested_assets(lead=lead)) == ["Finance deck"]


def test_a_competitor_objection_is_answered_only_for_the_same_competitor():
    lead = LeadFactory(industry="", stage=Stage.REJECTED)
    acme = asset("Why not Acme", funnel_stage="awareness")
    zeta = asset("Why not Zeta", funnel_stage="awareness")
    elsewhere = LeadFactory()
    Objection.objects.create(
        lead=elsewhere, category="competitor", competitor="Acme", text="x", answer=acme
    )
    Objection.objects.create(
        lead=elsewhere, category="competitor", competitor="Zeta", text="y", answer=zeta
    )
    Objection.objects.create(lead=lead, category="competitor", competitor="acme", text="z")
    (only,) = suggested_assets(lead=lead)
    assert only.asset == acme
    assert only.reasons == ["answers a competitor objection (Acme)"]


def test_ranked_by_similar_wins_then_matches_then_newest(rep):
    lead = LeadFactory(industry="Banking", title="CFO", stage=Stage.OPPORTUNITY)
    # two matches each
    two_new = asset("Two new", industries=["banking"], days_old=1)
    two_old = asset("Two old", industries=["banking"], days_old=5)
    # one match, but helped two banking wins (one used it, one named it in its story)
    helped = asset("Helped", funnel_stage="decision", days_old=9)
    # one match, helped one banking win used twice (counted once) and a retail win (not similar)
    helped_once = asset("Helped once", funnel_stage="decision", days_old=8)
    win1 = LeadFactory(industry="banking", stage=Stage.WON)
    win2 = LeadFactory(industry="BANKING", stage=Stage.WON)
    retail_win = LeadFactory(industry="Retail", stage=Stage.WON)
    open_bank = LeadFactory(industry="Banking", stage=Stage.SQL)
    used(helped, win1)
    won_story(win2, helped)
    used(helped_once, win1)
    used(helped_once, win1, kind="engaged")
    used(helped_once, retail_win)
    used(two_new, open_bank)  # not won: does not count
    used(two_old, open_bank)

    suggestions = suggested_assets(lead=lead)

    assert titles(suggestions) == ["Helped", "Helped once", "Two new", "Two old"]
    assert [s.helped_wins for s in suggestions] == [2, 1, 0, 0]
    assert [s.score for s in suggestions] == [1, 1, 2, 2]
    assert suggestions[2].reasons == ["for Banking", "fits the decision stage"]


def test_without_an_industry_wins_of_any_industry_count():
    lead = LeadFactory(industry="", stage=Stage.OPPORTUNITY)
    a = asset("Any", funnel_stage="decision")
    used(a, LeadFactory(industry="Retail", stage=Stage.WON))
    used(a, LeadFactory(industry="Banking", stage=Stage.WON))
    (only,) = suggested_assets(lead=lead)
    assert only.helped_wins == 2


def test_the_last_share_to_this_lead_is_shown_and_the_limit_holds():
    lead = LeadFactory(industry="Banking", stage=Stage.NEW)
    first = asset("First", industries=["banking"], days_old=0)
    for n in range(6):
        asset(f"More {n}", industries=["banking"], days_old=n + 1)
    used(first, lead, at=NOW - timedelta(days=3))
    used(first, lead, at=NOW - timedelta(days=1))
    used(first, LeadFactory(), at=NOW)  # another lead's share
    suggestions = suggested_assets(lead=lead)
    assert len(suggestions) == 5
    assert suggestions[0].asset == first
    assert suggestions[0].shared_at == NOW - timedelta(days=1)
    assert suggestions[1].shared_at is None


def test_a_fixed_number_of_queries_whatever_the_library():
    lead = LeadFactory(industry="Banking", stage=Stage.NEW)
    Objection.objects.create(lead=lead, category="price", text="x")
    for n in range(3):
        asset(f"A{n}", industries=["banking"])
    with CaptureQueriesContext(connection) as few:
        suggested_assets(lead=lead)
    for n in range(30):
        used(asset(f"B{n}", industries=["banking"]), LeadFactory(stage=Stage.WON))
    with CaptureQueriesContext(connection) as many:
        assert len(suggested_assets(lead=lead)) == 5
    assert len(few.captured_queries) == len(many.captured_queries) <= 6
