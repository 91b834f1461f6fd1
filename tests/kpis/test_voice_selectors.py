"""Voice of the prospect's figures against hand-computed counts on a small week: categories (and
by segment) with their shares and answered shares, competitors case-insensitively, the latest
quotes, the weekly report's dict and the KPI tables."""

import datetime as dt
import json

import pytest

from content.models import Asset, Objection
from kpis.selectors.periods import iso_week_period
from kpis.selectors.voice import (
    objection_categories,
    objection_competitors,
    objections_report,
    recent_objections,
)
from kpis.voice_tables import voice_tables
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

WEEK = iso_week_period("2026-W47", tz="UTC")  # Mon 16 Nov - Mon 23 Nov 2026
MON = dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC)


def said(lead, category, *, at, competitor="", answer=None, text="x", campaign="lead"):
    return Objection.objects.create(
        lead=lead,
        campaign=lead.campaign if campaign == "lead" else campaign,
        category=category,
        competitor=competitor,
        text=text,
        logged_at=at,
        logged_by=lead.owner,
        answer=answer,
    )


@pytest.fixture
def week(rep):
    """In the week: banking lead A (Google, campaign C1, 30 people): price, price (answered),
    competitor Acme; retail lead B (LinkedIn, C2, 5000 people): price, competitor ACME,
    competitor Beta, timing. Outside the week: one price the Sunday before, one the Monday
    after."""
    google, linkedin = SourceFactory(name="Google"), SourceFactory(name="LinkedIn")
    c1, c2 = CampaignFactory(name="C1"), CampaignFactory(name="C2")
    a = LeadFactory(
        owner=rep, industry="Banking", source=google, campaign=c1, company_size=30, first_name="A"
    )
    b = LeadFactory(owner=rep, industry="retail", source=linkedin, campaign=c2, company_size=5000)
    answer = Asset.objects.create(
        title="Pricing", kind="deck", funnel_stage="decision", url="https://e.x/p", sales_ready=True
    )
    rows = {
        "a_price": said(a, "price", at=MON),
        "a_price2": said(a, "price", at=MON + dt.timedelta(hours=1), answer=answer),
        "a_comp": said(a, "competitor", at=MON + dt.timedelta(days=1), competitor="Acme"),
        "b_price": said(b, "price", at=MON + dt.timedelta(days=2)),
        "b_comp": said(b, "competitor", at=MON + dt.timedelta(days=3), competitor="ACME"),
        "b_beta": said(b, "competitor", at=MON + dt.timedelta(days=4), competitor="Beta"),
        "b_time": said(b, "timing", at=MON + dt.timedelta(days=6, hours=14), text="Next year."),
    }
    said(a, "price", at=WEEK.start - dt.timedelta(seconds=1))
    said(b, "price", at=WEEK.end)
    return {"a": a, "b": b, "google": google, "c1": c1, "c2": c2, **rows}


def as_tuples(rows):
    return [(r.segment, r.category, r.count, r.share, r.answered, r.answered_share) for r in rows]


def test_categories_of_the_week_with_shares(week):
    # 7 in the week: price 3 (1 answered), competitor 3, timing 1
    assert as_tuples(objection_categories(period=WEEK)) == [
        (None, "price", 3, 42.9, 1, 33.3),
        (None, "competitor", 3, 42.9, 0, 0.0),
        (None, "timing", 1, 14.3, 0, 0.0),
    ]


def test_categories_by_industry_share_within_each_industry(week):
    # retail 4 (price 1, competitor 2, timing 1), banking 3 (price 2, competitor 1)
    assert as_tuples(objection_categories(period=WEEK, segment="industry")) == [
        ("retail", "competitor", 2, 50.0, 0, 0.0),
        ("retail", "price", 1, 25.0, 0, 0.0),
        ("retail", "timing", 1, 25.0, 0, 0.0),
        ("banking", "price", 2, 66.7, 1, 50.0),
        ("banking", "competitor", 1, 33.3, 0, 0.0),
    ]


def test_categories_by_size_band_and_by_source(week):
    sizes = [
        (r.segment, r.category, r.count) for r in objection_categories(period=WEEK, segment="size")
    ]
    assert sizes[0] == ("1,000 or more", "competitor", 2)
    assert ("Under 50", "price", 2) in sizes
    sources = {
        (r.segment, r.category): r.count
        for r in objection_categories(period=WEEK, segment="source")
    }
    assert sources[("Google", "price")] == 2 and sources[("LinkedIn", "timing")] == 1


def test_campaign_is_the_one_it_was_logged_under_and_unknowns_are_named(week, rep):
    week["a"].campaign = week["c2"]
    week["a"].save()  # later: the objections stay under C1
    by_campaign = objection_categories(period=WEEK, campaign_id=week["c1"].pk)
    assert sum(r.count for r in by_campaign) == 3
    no_data = LeadFactory(owner=rep, industry="", source=None, campaign=None, company_size=None)
    said(no_data, "other", at=MON)
    segments = {
        seg: {
            r.segment
            for r in objection_categories(period=WEEK, segment=seg)
            if r.category == "other"
        }
        for seg in ("industry", "source", "campaign", "size")
    }
    assert segments == {
        "industry": {"Unknown industry"},
        "source": {"Unknown source"},
        "campaign": {"No campaign"},
        "size": {"Unknown size"},
    }


def test_filters_by_source_and_category(week):
    rows = objection_categories(period=WEEK, source_id=week["google"].pk)
    assert [(r.category, r.count) for r in rows] == [("price", 2), ("competitor", 1)]
    rows = objection_categories(period=WEEK, category="timing")
    assert [(r.category, r.count, r.share) for r in rows] == [("timing", 1, 100.0)]


def test_competitors_case_insensitively(week):
    rows = objection_competitors(period=WEEK)
    # Acme + ACME = 2 of 3 naming one (a tie of spellings: the first by code point); Beta 1
    assert [(r.name, r.count, r.share) for r in rows] == [("ACME", 2, 66.7), ("Beta", 1, 33.3)]
    assert objection_competitors(period=WEEK, limit=1)[0].count == 2
    said(week["a"], "price", at=MON, competitor="Acme")
    # Acme twice, ACME once: the most used spelling; 3 of 4
    assert [(r.name, r.count, r.share) for r in objection_competitors(period=WEEK)] == [
        ("Acme", 3, 75.0),
        ("Beta", 1, 25.0),
    ]


def test_recent_quotes_newest_first_in_the_period(week):
    recent = recent_objections(period=WEEK, limit=3)
    assert recent == [week["b_time"], week["b_beta"], week["b_comp"]]


def test_an_empty_period_has_no_rows():
    empty = iso_week_period("2020-W01", tz="UTC")
    assert objection_categories(period=empty) == []
    assert objection_competitors(period=empty) == []
    assert objections_report(period=empty) == {
        "total": 0,
        "categories": [],
        "competitors": [],
        "recent": [],
    }


def test_the_weekly_report_dict_is_json_ready(week):
    report = objections_report(period=WEEK)
    assert json.loads(json.dumps(report)) == report
    assert report["total"] == 7
    assert [(c["category"], c["count"]) for c in report["categories"]] == [
        ("price", 3),
        ("competitor", 3),
        ("timing", 1),
    ]
    assert report["competitors"] == [{"name": "ACME", "count": 2}, {"name": "Beta", "count": 1}]
    assert len(report["recent"]) == 5
    first = report["recent"][0]
    assert first["text"] == "Next year." and first["label"] == "Timing"
    assert first["lead"] == week["b"].display_name and first["rep"] == "rep"


def test_the_kpi_tables(week):
    objections, competitors = voice_tables(period=WEEK)
    assert objections.key == "objections" and competitors.key == "objection_competitors"
    assert objections.rows == [
        ["Price", 3, 42.9, 1, 33.3],
        ["Competitor", 3, 42.9, 0, 0.0],
        ["Timing", 1, 14.3, 0, 0.0],
    ]
    assert "7 logged, 1 with an asset" in objections.note
    assert competitors.rows == [["ACME", 2, 66.7], ["Beta", 1, 33.3]]
    filtered, _ = voice_tables(period=WEEK, campaign_id=week["c2"].pk)
    assert sum(r[1] for r in filtered.rows) == 4
