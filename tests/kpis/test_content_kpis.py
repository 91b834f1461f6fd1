"""The content KPIs on a hand-built week (W47: Mon 16 Nov 2026 to Sun 22 Nov, Berlin)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from content.models import (
    Asset,
    AssetKind,
    AssetUse,
    AssetUseKind,
    ContentRequest,
    FunnelStage,
    RequestStatus,
)
from kpis.selectors.content import (
    SharedAsset,
    content_report,
    content_shares,
    content_unused,
    content_usage,
)
from leads.models import Stage, TouchpointKind
from tests.factories import RepFactory, SourceFactory, TouchpointFactory, UserFactory
from tests.kpis.history import (
    W46,
    W47,
    W48,
    new_lead,
    reads,
    settle,
    to_opportunity,
    utc,
    walk,
    won_path,
)

pytestmark = pytest.mark.django_db


def asset(title, *, ready=True, created=None, owner=None):
    return Asset.objects.create(
        title=title,
        kind=AssetKind.CASE_STUDY,
        funnel_stage=FunnelStage.DECISION,
        url=f"https://example.com/{title.lower().replace(' ', '-')}",
        sales_ready=ready,
        owner=owner,
        created_at=created or utc(11, 1, 9),
    )


def use(a, lead, kind, at, by=None):
    touchpoint = TouchpointFactory(
        lead=lead,
        kind=TouchpointKind.CONTENT_SHARED
        if kind == AssetUseKind.SHARED
        else TouchpointKind.CONTENT_DOWNLOAD,
        occurred_at=at,
    )
    return AssetUse.objects.create(
        asset=a, lead=lead, touchpoint=touchpoint, kind=kind, occurred_at=at, by=by
    )


SHARED, ENGAGED = AssetUseKind.SHARED, AssetUseKind.ENGAGED


@pytest.fixture
def week():
    google = SourceFactory(name="Google")
    rep = RepFactory()
    owner = UserFactory(username="maria", first_name="Maria", last_name="Marketing")
    case = asset("Case study", owner=owner)
    deck = asset("Deck")
    pager = asset("One-pager", created=utc(10, 2, 9))
    asset("Draft", ready=False)
    asset("Later", created=utc(11, 25, 9))
    created = utc(11, 2, 9)
    # L1: won 1 day after entering opportunity; case shared and engaged before the win
    l1 = new_lead(created)
    won_path(l1, 16, 1000)  # opportunity 19 Nov 12:00, won 20 Nov 12:00
    use(case, l1, SHARED, utc(11, 17, 9), by=rep)
    use(case, l1, ENGAGED, utc(11, 18, 9))
    # L2 (Google): lost 3 days after entering opportunity; case and deck shared before
    l2 = to_opportunity(new_lead(created, source=google), 16, 500)  # 16 Nov 11:00
    walk(l2, (Stage.LOST, utc(11, 19, 11), {"reason": "price"}))
    use(case, l2, SHARED, utc(11, 17, 10), by=rep)
    use(deck, l2, SHARED, utc(11, 18, 10), by=rep)
    # L3: won 12 hours after entering opportunity, no content: the baseline
    won_path(new_lead(created), 17, 800, hours=12)
    # L4: lost 3 days after entering opportunity; the deck shared only after the loss
    l4 = to_opportunity(new_lead(created), 18, 300)  # 18 Nov 11:00
    walk(l4, (Stage.LOST, utc(11, 21, 11), {"reason": "price"}))
    use(deck, l4, SHARED, utc(11, 21, 12), by=rep)
    # L5, L6: engaged with the case study (L6 twice), no close
    use(case, new_lead(created), ENGAGED, utc(11, 18, 12))
    l6 = new_lead(created)
    use(case, l6, ENGAGED, utc(11, 19, 12))
    use(case, l6, ENGAGED, utc(11, 20, 12))
    # L7: the case study shared in W46, won in W47 4 days after entering opportunity
    l7 = to_opportunity(new_lead(created), 17, 900)  # 17 Nov 11:00
    use(case, l7, SHARED, utc(11, 10, 9), by=rep)
    walk(l7, (Stage.WON, utc(11, 21, 11)))
    # the one-pager is shared only in W48
    use(pager, l6, SHARED, utc(11, 24, 9), by=rep)
    settle()
    return {"google": google, "case": case, "deck": deck, "pager": pager}


def _row(r):
    return (r.title, r.shares, r.leads_engaged, r.opportunities, r.won, r.win_rate, r.median_days)


def test_usage_per_asset_against_the_opportunities_that_touched_no_content(week):
    usage = content_usage(period=W47)
    assert [_row(r) for r in usage.rows] == [
        # L1 won (1 d), L2 lost (3 d), L7 won (4 d, shared the week before)
        ("Case study", 2, 3, 3, 2, 66.7, 3.0),
        # L2 lost (3 d); L4's share came after its loss
        ("Deck", 2, 0, 1, 0, 0.0, 3.0),
    ]
    # L3 won (0.5 d) and L4 lost (3 d)
    assert _row(usage.baseline) == ("No content", 0, 0, 2, 1, 50.0, 1.8)
    assert usage.baseline.asset_id is None
    assert (usage.shares, usage.leads_engaged) == (4, 3)


def test_usage_filtered_by_the_leads_current_source(week):
    usage = content_usage(period=W47, source_id=week["google"].pk)
    assert [_row(r) for r in usage.rows] == [
        ("Case study", 1, 0, 1, 0, 0.0, 3.0),
        ("Deck", 1, 0, 1, 0, 0.0, 3.0),
    ]
    assert _row(usage.baseline) == ("No content", 0, 0, 0, 0, None, None)


def test_usage_of_one_asset_keeps_the_whole_baseline(week):
    usage = content_usage(period=W47, asset_id=week["deck"].pk)
    assert [r.title for r in usage.rows] == ["Deck"]
    assert usage.baseline.opportunities == 2


def test_the_next_week_has_only_the_one_pager_share(week):
    usage = content_usage(period=W48)
    assert [_row(r) for r in usage.rows] == [("One-pager", 1, 0, 0, 0, None, None)]
    assert usage.baseline.opportunities == 0


def test_usage_costs_a_fixed_number_of_queries(week):
    with CaptureQueriesContext(connection) as queries:
        content_usage(period=W47)
    with CaptureQueriesContext(connection) as empty:
        content_usage(period=W46)
    assert len(reads(queries)) == len(reads(empty)) == 5
    with CaptureQueriesContext(connection) as unused:
        content_unused(period=W47)
    assert len(reads(unused)) == 2


def test_unused_sales_ready_assets(week):
    unused = content_unused(period=W47)
    # ready at the end of W47: case, deck, one-pager ("Later" came after, "Draft" is not ready)
    assert (unused.total, unused.unused, unused.share) == (3, 1, 33.3)
    (pager,) = unused.assets
    assert (pager.title, pager.owner, pager.age_days) == ("One-pager", "", 51)
    w48 = content_unused(period=W48)
    # "Later" exists now; case and deck went unshared, the one-pager was shared
    assert (w48.total, w48.unused) == (4, 3)
    assert [a.title for a in w48.assets] == ["Case study", "Deck", "Later"]
    assert w48.assets[0].owner == "Maria Marketing"
    cut = content_unused(period=W48, limit=2)
    assert (cut.unused, len(cut.assets)) == (3, 2)


def test_unused_of_an_empty_library_has_no_share():
    unused = content_unused(period=W47)
    assert (unused.total, unused.unused, unused.share, unused.assets) == (0, 0, None, ())


def test_the_report_section_is_json_ready(week):
    ContentRequest.objects.create(title="ROI calculator", vote_count=4)
    ContentRequest.objects.create(title="Banking case", vote_count=7)
    ContentRequest.objects.create(title="Done one", vote_count=9, status=RequestStatus.DONE)
    ContentRequest.objects.create(title="Security FAQ", vote_count=1)
    ContentRequest.objects.create(title="Pricing deck", vote_count=0)
    report = content_report(period=W47)
    case, deck = week["case"].pk, week["deck"].pk
    assert report == {
        "shares": 4,
        "leads_engaged": 3,
        "top_shared": [
            {"asset_id": case, "title": "Case study", "shares": 2, "leads_engaged": 3},
            {"asset_id": deck, "title": "Deck", "shares": 2, "leads_engaged": 0},
        ],
        "unused": {"count": 1, "total": 3, "share": 33.3, "titles": ["One-pager"], "more": 0},
        "requests": [
            {"id": report["requests"][0]["id"], "title": "Banking case", "votes": 7},
            {"id": report["requests"][1]["id"], "title": "ROI calculator", "votes": 4},
            {"id": report["requests"][2]["id"], "title": "Security FAQ", "votes": 1},
        ],
    }


def test_an_engagement_before_the_period_does_not_count_as_engaged(week):
    lead = new_lead(utc(11, 2, 9))
    use(week["deck"], lead, ENGAGED, W47.start - timedelta(seconds=1))
    use(week["deck"], lead, ENGAGED, W47.start)
    deck = next(r for r in content_usage(period=W47).rows if r.title == "Deck")
    assert deck.leads_engaged == 1


def test_shares_only_count_as_the_usage_does_in_two_queries(week):
    with CaptureQueriesContext(connection) as queries:
        shared = content_shares(period=W47, limit=1)
    assert len(reads(queries)) == 2
    assert (shared.shares, shared.leads_engaged) == (4, 3)
    assert shared.top == (SharedAsset(week["case"].pk, "Case study", 2, 3),)
    assert content_shares(period=W48).top == (SharedAsset(week["pager"].pk, "One-pager", 1, 0),)
