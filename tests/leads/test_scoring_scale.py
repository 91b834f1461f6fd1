"""Item 7 of the scoring issue: the rescore on old data, resumable runs, and the lead table's shape."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.utils import timezone

from leads import services
from leads.models import Lead
from leads.scoring import services as scoring
from leads.scoring import sql as scoring_sql
from leads.scoring.engagement import (
    Anchored,
    anchored_add,
    anchored_from_touchpoints,
    decay,
    engagement_at,
)
from leads.scoring.models import ModelStatus, RunStatus, ScoringModel
from leads.scoring.rules import validate_spec
from tests.factories import LeadFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

SPEC = {
    "half_life_days": 10.0,
    "mql_total": 100,
    "mql_fit": 40,
    "grade_a": 60,
    "grade_b": 40,
    "grade_c": 20,
    "group_caps": {"web": 10},
    "fit_rules": [
        {"key": "big", "field": "company_size", "op": "gte", "value": 100, "points": 20},
        {"key": "dach", "field": "country", "op": "in", "value": ["DE", "AT", "CH"], "points": 30},
    ],
    "engagement_rules": [
        {"key": "demo", "kind": "demo_request", "points": 60},
        {"key": "webinar", "kind": "webinar_attended", "points": 20},
        {"key": "web", "kind": "web_visit", "points": 3, "group": "web"},
    ],
}  # fmt: skip

NINETEEN_25 = dt.datetime(1925, 1, 1, tzinfo=dt.UTC)

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the set-based SQL path is PostgreSQL's"
)


def activate(spec: dict | None = None) -> ScoringModel:
    ScoringModel.objects.filter(status=ModelStatus.ACTIVE).update(status=ModelStatus.RETIRED)
    return ScoringModel.objects.create(
        name="Scale test", status=ModelStatus.ACTIVE, **validate_spec(spec or SPEC)
    )


def fresh(lead: Lead) -> Lead:
    return Lead.objects.get(pk=lead.pk)


# --- decay underflow -------------------------------------------------------------------------------


def test_decay_is_zero_from_1075_half_lives_and_never_overflows():
    h = 86400.0
    assert decay(1074.5 * h, h) > 0  # the smallest float above zero, as 0.5 ** 1074.5 gives
    assert decay(1075 * h, h) == 0.0
    assert decay(1e9 * h, h) == 0.0
    assert decay(-5000 * h, h) == 2.0**1000  # a future date is clamped, not an OverflowError


@pytest.mark.parametrize("use_sql", [False, True], ids=["python", "sql"])
def test_a_touchpoint_from_1925_rescores_like_the_real_time_path(use_sql, marketer):
    if use_sql and connection.vendor != "postgresql":
        pytest.skip("the set-based SQL path is PostgreSQL's; SQLite uses the Python path")
    activate()
    lead = LeadFactory(company_size=500, country="DE")
    services.touchpoint_record(lead=lead, kind="demo_request", occurred_at=NINETEEN_25, by=marketer)
    services.touchpoint_record(lead=lead, kind="webinar_attended", by=marketer)
    other = LeadFactory(company_size=500, country="DE")
    services.touchpoint_record(lead=other, kind="web_visit", by=marketer)
    realtime = fresh(lead)
    at = timezone.now() + dt.timedelta(minutes=1)

    run = scoring.scoring_run_create(batch_size=1)
    done = scoring.scoring_run_execute(run_id=run.pk, at=at, use_sql=use_sql)

    assert (done.status, done.processed) == (RunStatus.DONE, 2)
    after = fresh(lead)
    model = scoring.scoring_model_active()
    # the 1925 demo weighs nothing; the webinar of today counts, exactly as in real time
    assert after.score == pytest.approx(50 + 20, rel=1e-4)
    assert after.engagement_sums == {"_": pytest.approx(20, rel=1e-4)}
    assert engagement_at(model, Anchored.from_lead(after), at) == pytest.approx(
        engagement_at(model, Anchored.from_lead(realtime), at), rel=1e-9
    )
    assert fresh(other).scored_with_id == model.id


@needs_postgres
def test_the_sql_decay_is_the_python_decay_at_the_underflow_limit():
    # a one-day half-life: 1074.5 days is the smallest positive weight, 1075.5 days is zero
    activate({**SPEC, "half_life_days": 1.0})
    at = timezone.now()
    leads = []
    for days in (1074.5, 1075.5, 40000, -0.5):
        lead = LeadFactory()
        TouchpointFactory(lead=lead, kind="demo_request", occurred_at=at - dt.timedelta(days=days))
        leads.append(lead)
    model = scoring.scoring_model_active()
    lo, hi = leads[0].pk, leads[-1].pk
    results = []
    for batch in (scoring_sql.rescore_batch_python, scoring_sql.rescore_batch_postgres):
        with transaction.atomic():
            batch(model, lo=lo, hi=hi, at=at, snapshots=False)
        results.append([fresh(lead).engagement_sums for lead in leads])
    python, sql = results
    assert python[0] == sql[0] and 0 < sql[0]["_"] < 1e-320  # 60 * a weight just above zero
    assert python[1] is sql[1] is None and python[2] is sql[2] is None
    assert python[3]["_"] == pytest.approx(sql[3]["_"], rel=1e-12)
    assert sql[3]["_"] == pytest.approx(60 * 2**0.5)


def test_an_import_rescore_of_a_lead_with_a_1925_touchpoint_succeeds():
    activate()
    lead = LeadFactory(company_size=500, country="DE")
    TouchpointFactory(lead=lead, kind="demo_request", occurred_at=NINETEEN_25)
    TouchpointFactory(lead=lead, kind="demo_request")
    # leads_rescore is what an import and a merge call, on PostgreSQL through the SQL statement
    assert scoring.leads_rescore(lead_ids=[lead.pk]) == [lead.pk]
    assert fresh(lead).score == pytest.approx(50 + 60, rel=1e-6)


def test_a_score_read_before_its_anchor_is_recomputed_not_grown_back(marketer):
    activate()
    lead = LeadFactory(company_size=500, country="DE")
    start = timezone.now() - dt.timedelta(days=30)
    services.touchpoint_record(lead=lead, kind="webinar_attended", occurred_at=start, by=marketer)
    services.touchpoint_record(lead=lead, kind="demo_request", by=marketer)
    stored = fresh(lead)
    # ten days after the webinar, before the demo: only the webinar, half decayed
    at = start + dt.timedelta(days=10)
    assert scoring.lead_score_now(lead=stored, at=at) == pytest.approx(50 + 10, rel=1e-9)
    # a year before the anchor: the stored sums would have grown 2 ** 36.5-fold; nothing counts yet
    assert scoring.lead_score_now(lead=stored, at=start - dt.timedelta(days=365)) == 50
    # the pure read never grows the sums back either
    model = scoring.scoring_model_active()
    state = Anchored.from_lead(stored)
    early = stored.engagement_anchor_at - dt.timedelta(days=3650)
    assert engagement_at(model, state, early) == engagement_at(model, state, state.anchor)


def test_reading_before_the_anchor_of_a_future_touchpoint_holds_its_value():
    activate()
    model = scoring.scoring_model_active()
    now = timezone.now()
    state = anchored_add(
        model,
        Anchored(),
        points={"_": 60},
        occurred_at=now + dt.timedelta(minutes=4),
        now=now,
    )
    assert engagement_at(model, state, now) == 60
    direct = anchored_from_touchpoints(model, [("demo_request", None, {}, now)], at=now)
    assert engagement_at(model, direct, now) == 60
