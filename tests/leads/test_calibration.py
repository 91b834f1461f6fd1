"""Calibrated numbers: the share of decided leads that were won, per grade and score band of the
version that scored them, with the count behind it; the version page and the lead page.

The leads are real: created by the factory at the opportunity stage, scored by the shipped
default model through the rescore service, and won or lost through the lifecycle service. Fit
under that model (no touchpoints, so the stored score is the fit): a CEO of a 1500-person US
software company 75 (A), a head of operations of a 120-person German software company 55 (B), a
manager of a 120-person German school 20 (C), an intern of a 5-person Brazilian school -45 (D)."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leads import services
from leads.models import Stage
from leads.scoring import services as scoring
from leads.scoring.calibration import (
    MIN_DECIDED,
    band_width,
    calibration_of_scored_leads,
    lead_calibration,
)
from leads.scoring.compiled import scoring_model_active
from leads.scoring.models import ScoringModel
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

PROFILES = {
    "A": {"title": "CEO", "company_size": 1500, "industry": "Software", "country": "US"},
    "B": {"title": "Head of Operations", "company_size": 120, "industry": "Software"},
    "C": {"title": "Manager", "company_size": 120, "industry": "Education"},
    "D": {"title": "Intern", "company_size": 5, "industry": "Education", "country": "BR"},
}


@pytest.fixture(autouse=True)
def _fresh_cache(db):
    # the counts are cached per version id, and ids repeat from one test database to the next
    cache.clear()


def _leads(rep, grade: str, count: int) -> list:
    leads = LeadFactory.create_batch(
        count, stage=Stage.OPPORTUNITY, owner=rep, deal_value=1000, **PROFILES[grade]
    )
    scoring.leads_rescore(lead_ids=[lead.pk for lead in leads])
    for lead in leads:
        lead.refresh_from_db()
    return leads


def _decide(rep, grade: str, *, won: int, lost: int, open_: int = 0) -> list:
    leads = _leads(rep, grade, won + lost + open_)
    for lead in leads[:won]:
        services.lead_move(lead=lead, to=Stage.WON, by=rep, deal_value="1000")
    for lead in leads[won : won + lost]:
        services.lead_move(lead=lead, to=Stage.LOST, by=rep, reason="price")
    return leads


@pytest.fixture
def history(rep):
    """A: 30 won of 40 (and 3 still open); B: 9 of 30; C: 2 of 5; D: none decided."""
    leads = {
        "A": _decide(rep, "A", won=30, lost=10, open_=3),
        "B": _decide(rep, "B", won=9, lost=21),
        "C": _decide(rep, "C", won=2, lost=3),
        "D": _leads(rep, "D", 2),
    }
    assert {g: {x.grade for x in leads[g]} for g in leads} == {g: {g} for g in leads}
    return leads


def _active() -> ScoringModel:
    return ScoringModel.objects.get(status="active")


def test_each_grade_shows_the_share_won_with_its_count(history):
    calibration = calibration_of_scored_leads(model_id=_active().pk)
    assert [(r.label, r.positive, r.decided) for r in calibration.grades] == [
        ("A", 30, 40),
        ("B", 9, 30),
        ("C", 2, 5),
        ("D", 0, 0),
    ]
    assert calibration.grade("A").text == "75% won (n = 40)"
    assert calibration.grade("B").text == "30% won (n = 30)"
    assert calibration.decided == 75


def test_below_the_minimum_count_it_says_too_few_instead_of_a_share(history):
    calibration = calibration_of_scored_leads(model_id=_active().pk)
    assert MIN_DECIDED == 30
    assert calibration.grade("C").percent is None
    assert calibration.grade("C").text == "too few decided leads to say (n = 5)"
    assert calibration.grade("D").text == "no decided lead yet"


def test_score_bands_are_a_fifth_of_the_mql_total_wide_highest_first(history):
    calibration = calibration_of_scored_leads(model_id=_active().pk)
    assert calibration.width == band_width(100) == 20
    assert [(r.label, r.positive, r.decided) for r in calibration.bands] == [
        ("score 60–80", 30, 40),
        ("score 40–60", 9, 30),
        ("score 20–40", 2, 5),
    ]
    assert calibration.band(79.9).text == "75% won (n = 40)"
    assert calibration.band(80).label == "score 80–100"
    assert calibration.band(80).decided == 0
    assert calibration.band(-45).label == "score -60–-40"


def test_band_width_is_a_round_number_near_a_fifth_of_the_mql_total():
    assert [band_width(t) for t in (0, 10, 100, 120, 250, 5000, 10**6)] == [
        1,
        2,
        20,
        25,
        50,
        1000,
        1000,
    ]


def test_only_decided_leads_that_the_version_scored_count(rep, history):
    # won before it was ever scored: graded by no version, so it says nothing of any grade
    unscored = LeadFactory(stage=Stage.OPPORTUNITY, owner=rep, deal_value=1000, **PROFILES["A"])
    services.lead_move(lead=unscored, to=Stage.WON, by=rep, deal_value="1000")
    # lost, then recycled to marketing: lost_at stays, so it is still a lost lead
    recycled = history["A"][-1]
    services.lead_move(lead=recycled, to=Stage.LOST, by=rep, reason="price")
    services.lead_move(lead=recycled, to=Stage.RECYCLED, by=rep, reason="timing")
    recycled.refresh_from_db()
    assert recycled.stage == Stage.RECYCLED and recycled.lost_at is not None
    assert calibration_of_scored_leads(model_id=_active().pk).grade("A").decided == 41


def test_one_query_then_the_cache_for_a_few_minutes(history, django_assert_num_queries):
    active = _active()
    with django_assert_num_queries(1):
        first = calibration_of_scored_leads(model_id=active.pk, mql_total=active.mql_total)
    extra = _decide(history["A"][0].owner, "A", won=1, lost=0)
    with django_assert_num_queries(0):
        cached = calibration_of_scored_leads(model_id=active.pk)
    assert cached.grade("A").decided == first.grade("A").decided == 40
    cache.clear()  # what expiry does after CACHE_SECONDS
    assert calibration_of_scored_leads(model_id=active.pk).grade("A").decided == 41
    assert extra[0].grade == "A"


def test_a_lead_is_told_how_often_leads_like_it_were_won(history):
    open_lead = history["A"][-1]
    open_lead.refresh_from_db()
    found = lead_calibration(open_lead)
    assert found.grade_text == "Leads like this one (grade A) won 75% of the time (n = 40)"
    assert found.band_text == "score 60–80: 75% won (n = 40)"
    c_lead = history["C"][0]
    c_lead.refresh_from_db()
    assert lead_calibration(c_lead).grade_text == (
        "Leads like this one (grade C): too few decided leads to say (n = 5)"
    )
    assert lead_calibration(LeadFactory()) is None  # never scored


def test_the_lead_page_shows_the_line_near_the_grade(client, marketer, history):
    client.force_login(marketer)
    page = client.get(reverse("leads:detail", args=[history["B"][0].pk])).content.decode()
    assert "Leads like this one (grade B) won 30% of the time (n = 30)." in page
    assert "Score 40–60: 30% won (n = 30)." in page
    assert page.index("Leads like this one") > page.index("grade B)</dd>")


def _calibration_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert b"won 30% of the time" in client.get(url).content
    return [
        q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"] and "grade" in q["sql"]
    ]


def test_the_lead_page_counts_once_then_reads_the_cache(client, marketer, history):
    client.force_login(marketer)
    url = reverse("leads:detail", args=[history["B"][0].pk])
    assert len(_calibration_queries(client, url)) == 1
    assert _calibration_queries(client, url) == []


def test_the_active_version_page_lists_grades_and_bands(client, marketer, history):
    client.force_login(marketer)
    page = client.get(reverse("leads:scoring_model", args=[_active().pk])).content.decode()
    assert "Among the 75 decided leads (won or lost) this version scored" in page
    assert "<td>Grade A</td><td>75% won (n = 40)</td>" in page
    assert "<td>Grade C</td><td>too few decided leads to say (n = 5)</td>" in page
    assert "<td>Score 60–80</td><td>75% won (n = 40)</td>" in page


def _tuned(marketer) -> ScoringModel:
    active = scoring_model_active()
    spec = {
        "half_life_days": active.half_life_days,
        "mql_total": 90,
        "mql_fit": 30,
        "grade_a": 60,
        "grade_b": 40,
        "grade_c": 20,
        "group_caps": {},
        "fit_rules": [{"field": "industry", "op": "eq", "value": "Software", "points": 50}],
        "engagement_rules": [],
    }
    grades = [
        {"grade": "A", "leads": 812, "positives": 333, "rate": 0.4101},
        {"grade": "B", "leads": 400, "positives": 100, "rate": 0.25},
        {"grade": "C", "leads": 29, "positives": 3, "rate": 0.1034},
        {"grade": "D", "leads": 0, "positives": 0, "rate": None},
    ]
    bands = [
        {"band": 1, "leads": 120, "positives": 60, "min_score": 80.0, "max_score": 140.0},
        {"band": 2, "leads": 0, "positives": 0, "min_score": None, "max_score": None},
        {"band": 3, "leads": 20, "positives": 2, "min_score": 12.5, "max_score": 12.5},
    ]
    report = {
        "kind": "tuning",
        "outcome": "accepted",
        "outcome_words": {"positive": "accepted by sales", "negative": "rejected"},
        "seed": 4,
        "holdout_share": 0.25,
        "leads": {"holdout": 1241},
        "proposal": {"auc": 0.71, "grades": grades, "bands": bands},
    }
    return scoring.scoring_model_create(
        name="Tuned", spec=spec, by=marketer, report=report, origin="tuning"
    )


def test_a_tuned_version_page_shows_its_holdout_tables(client, marketer):
    model = _tuned(marketer)
    client.force_login(marketer)
    page = client.get(reverse("leads:scoring_model", args=[model.pk])).content.decode()
    assert "On the 1241 holdout leads that fine-tuning kept out of fitting" in page
    assert "<td>Grade A</td><td>41% accepted by sales (n = 812)</td>" in page
    assert "<td>Grade C</td><td>too few decided leads to say (n = 29)</td>" in page
    assert "<td>Score 80–140</td><td>50% accepted by sales (n = 120)</td>" in page
    assert "<td>Score 12.5</td><td>too few decided leads to say (n = 20)</td>" in page


def test_a_hand_written_draft_shows_no_calibration(client, marketer, history):
    draft = scoring.scoring_model_copy(model=_active(), by=marketer)
    client.force_login(marketer)
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert 'id="calibration"' not in page
