"""Item 7 of the scoring issue: the rescore on old data, resumable runs, and the lead table's shape."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from alignment.lib.errors import DomainError
from leads import services
from leads.models import Lead, Stage
from leads.scoring import services as scoring
from leads.scoring import sql as scoring_sql
from leads.scoring.engagement import (
    Anchored,
    anchored_add,
    anchored_from_touchpoints,
    decay,
    engagement_at,
)
from leads.scoring.models import ModelStatus, RunKind, RunStatus, ScoringModel, ScoringRun
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


# --- resuming a run --------------------------------------------------------------------------------


def fail_second_batch(monkeypatch) -> None:
    """The second batch raises a non-transient error (as the underflow did), once."""
    real_python, real_sql = scoring_sql.rescore_batch_python, scoring_sql.rescore_batch_postgres
    calls = {"n": 0}

    def failing(real):
        def batch(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise ValueError("value out of range: underflow")
            return real(*args, **kwargs)

        return batch

    monkeypatch.setattr(scoring_sql, "rescore_batch_python", failing(real_python))
    monkeypatch.setattr(scoring_sql, "rescore_batch_postgres", failing(real_sql))


def test_the_rescore_command_continues_a_failed_run_after_its_last_batch(monkeypatch):
    model = activate()
    leads = LeadFactory.create_batch(5, company_size=500, country="DE")
    fail_second_batch(monkeypatch)
    with pytest.raises(CommandError, match="underflow"):
        call_command("rescore", "--batch-size", "2", stdout=io.StringIO())
    run = ScoringRun.objects.get()
    assert (run.status, run.processed, run.last_lead_id) == (RunStatus.FAILED, 2, leads[1].pk)
    assert [fresh(x).scored_with_id for x in leads] == [model.pk] * 2 + [None] * 3

    out = io.StringIO()
    call_command("rescore", stdout=out)
    text = out.getvalue()
    assert (
        f"Continuing rescore run {run.pk} (manual, failed (value out of range: underflow))" in text
    )
    assert f"after lead {leads[1].pk:,}: 2 leads done." in text
    assert "batches of 2 leads" in text  # the run keeps its batch size
    assert "Done: 3 leads rescored in" in text
    run = ScoringRun.objects.get()  # no second run
    assert (run.status, run.processed, run.message) == (
        RunStatus.DONE,
        5,
        "5 leads rescored with " + str(model) + ".",
    )
    assert [fresh(x).scored_with_id for x in leads] == [model.pk] * 5
    # a finished run is not continued: the next rescore is a new one
    call_command("rescore", stdout=io.StringIO())
    assert ScoringRun.objects.count() == 2


def test_the_rescore_command_continues_a_queued_activation_run_and_qualifies(monkeypatch):
    old = activate()
    lead = LeadFactory(company_size=500, country="DE")
    TouchpointFactory(lead=lead, kind="demo_request")  # 110 under the new version too
    call_command("rescore", stdout=io.StringIO())
    ScoringModel.objects.filter(pk=old.pk).update(status=ModelStatus.RETIRED)
    new = ScoringModel.objects.create(
        name="Lower line", status=ModelStatus.ACTIVE, **validate_spec({**SPEC, "mql_total": 90})
    )
    # what an activation leaves for its task (here as if the broker lost the message)
    queued = scoring.scoring_run_create(model=new, kind=RunKind.ACTIVATION)
    Lead.objects.filter(pk=lead.pk).update(score=40)  # below the old version's line

    call_command("rescore", "--batch-size", "10", stdout=io.StringIO())

    assert ScoringRun.objects.filter(model=new).get().pk == queued.pk
    queued.refresh_from_db()
    assert (queued.status, queued.batch_size, queued.processed) == (RunStatus.DONE, 10, 1)
    assert fresh(lead).stage == Stage.MQL  # as the activation's task would have moved it


def test_the_rescore_command_refuses_while_a_run_is_in_progress():
    activate()
    LeadFactory()
    run = scoring.scoring_run_create()
    ScoringRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=timezone.now()
    )
    with pytest.raises(CommandError, match=f"Rescore run {run.pk} \\(manual\\) is in progress"):
        call_command("rescore", stdout=io.StringIO())
    assert ScoringRun.objects.count() == 1
    assert fresh(Lead.objects.get()).scored_with_id is None

    # a stalled one (its worker died) is taken over
    ScoringRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    call_command("rescore", stdout=io.StringIO())
    run.refresh_from_db()
    assert (run.status, run.processed, ScoringRun.objects.count()) == (RunStatus.DONE, 1, 1)


def test_a_failed_run_of_a_retired_version_is_not_continued():
    old = activate()
    LeadFactory()
    failed = scoring.scoring_run_create(model=old)
    ScoringRun.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED)
    new = activate()
    call_command("rescore", stdout=io.StringIO())
    failed.refresh_from_db()
    assert failed.status == RunStatus.FAILED
    assert ScoringRun.objects.get(model=new).status == RunStatus.DONE


def test_resuming_refuses_a_run_that_is_done():
    activate()
    run = scoring.scoring_run_create()
    scoring.scoring_run_execute(run_id=run.pk)
    assert scoring.scoring_run_resume(run_id=run.pk) is None
    with pytest.raises(DomainError, match="at least 1"):
        scoring.scoring_run_resume(run_id=run.pk, batch_size=0)


# --- the lead table's shape (migration 0007) -------------------------------------------------------


def lead_table_indexes(*, unique: bool = False) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        found = {}
        for table in ("leads_lead", "leads_touchpoint"):
            constraints = connection.introspection.get_constraints(cursor, table)
            found.update(
                {
                    name: c["columns"]
                    for name, c in constraints.items()
                    if c["index"] or unique and c["unique"]
                }
            )
        return found


def test_no_single_column_index_duplicates_a_composite():
    indexes = lead_table_indexes()
    assert "leads_lead_owner_id_1f4568d0" not in indexes
    assert "leads_touchpoint_lead_id_bf98d552" not in indexes
    # the composites that serve those lookups stay
    assert indexes["lead_owner_stage"] == ["owner_id", "stage"]
    assert indexes["touchpoint_lead_time"] == ["lead_id", "occurred_at"]


@needs_postgres
def test_the_lead_table_leaves_room_for_heap_only_score_writes():
    indexes = lead_table_indexes()
    assert not [name for name in indexes if name.endswith("_like")]
    # email and external_id stay unique
    unique = lead_table_indexes(unique=True)
    assert ["email"] in unique.values() and ["external_id"] in unique.values()
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'leads_lead'")
        assert cursor.fetchone()[0] == ["fillfactor=50"]
        # and no score column is indexed, which would make every score write non-HOT
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'leads_lead'::regclass"
        )
        indexed = {row[0] for row in cursor.fetchall()}
    assert not indexed & {
        "fit_score",
        "engagement_score",
        "score",
        "grade",
        "engagement_sums",
        "engagement_anchor_at",
        "scored_with_id",
    }
