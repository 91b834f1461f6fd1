"""Scoring under concurrency, on PostgreSQL: touchpoints racing each other and racing a rescore.
SQLite has no row locks (it serialises whole-database writes), so these are skipped there."""

import datetime as dt
import importlib
import threading
import time

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from leads import services
from leads.models import (
    Lead,
    ScoreSnapshot,
    ScoringModel,
    ScoringRun,
    Stage,
    StageChange,
    Touchpoint,
)
from leads.scoring import services as scoring
from leads.scoring import sql as scoring_sql
from leads.scoring.engagement import Anchored, anchored_from_touchpoints, engagement_at
from leads.scoring.models import RunStatus
from tests.conftest import wait_for
from tests.factories import TouchpointFactory
from tests.leads.test_scoring_services import activate, good_fit

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks (SELECT ... FOR UPDATE) need PostgreSQL; SQLite serialises writes",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _default_model_back(transactional_db):
    """Transactional tests truncate every table when they end: put the shipped model back."""
    if not ScoringModel.objects.exists():
        module = importlib.import_module("leads.migrations.0004_default_scoring_model")
        module.add_default_model(apps, None)


def wait_for_lock_waiters(count: int) -> None:
    """Until `count` backends of this database wait for a lock."""

    def waiting() -> bool:
        with connection.cursor() as cursor:
            # the activity view is a snapshot per transaction unless cleared
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] >= count

    wait_for(waiting, timeout=30, interval=0.02)


def in_thread(target, errors: list) -> threading.Thread:
    def run():
        try:
            target()
        except Exception as error:  # surfaced in the main thread
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def assert_exact(lead: Lead) -> None:
    """The stored anchored form equals a recomputation from every touchpoint of the lead."""
    model = scoring.scoring_model_active()
    lead = Lead.objects.get(pk=lead.pk)
    rows = Touchpoint.objects.filter(lead=lead).values_list(
        "kind", "campaign_id", "metadata", "occurred_at"
    )
    at = timezone.now() + dt.timedelta(days=1)
    direct = anchored_from_touchpoints(model, list(rows), at=at)
    assert engagement_at(model, Anchored.from_lead(lead), at) == pytest.approx(
        engagement_at(model, direct, at), rel=1e-9
    )


def test_two_concurrent_touchpoints_both_count_and_cross_once(mql_events):
    activate()
    lead = good_fit()  # fit 50: one demo request (60) is enough to cross
    errors: list = []
    with transaction.atomic():
        # hold the row so that both touchpoints are written and then wait for it together
        Lead.objects.select_for_update().get(pk=lead.pk)
        threads = [
            in_thread(
                lambda n=n: services.touchpoint_record(
                    lead=Lead.objects.get(pk=lead.pk), kind="demo_request", system=f"tracker-{n}"
                ),
                errors,
            )
            for n in range(2)
        ]
        wait_for_lock_waiters(2)
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    lead = Lead.objects.get(pk=lead.pk)
    assert Touchpoint.objects.filter(lead=lead).count() == 2
    assert lead.engagement_sums["_"] == pytest.approx(120, abs=1e-3)  # both counted
    assert (lead.stage, lead.mql_count) == (Stage.MQL, 1)
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1
    assert ScoreSnapshot.objects.filter(lead=lead, kind="mql").count() == 1
    assert mql_events == [lead.pk]
    assert_exact(lead)


def test_many_concurrent_touchpoints_lose_no_points(mql_events):
    activate()
    lead = good_fit(title="")  # fit 30: below the fit threshold, never an MQL
    errors: list = []

    def burst():
        for _ in range(5):
            services.touchpoint_record(
                lead=Lead.objects.get(pk=lead.pk), kind="webinar_attended", system="tracker"
            )

    threads = [in_thread(burst, errors) for _ in range(6)]
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    lead = Lead.objects.get(pk=lead.pk)
    assert lead.engagement_sums["_"] == pytest.approx(30 * 20, abs=0.01)
    assert lead.stage == Stage.NEW and mql_events == []
    assert_exact(lead)


def test_a_touchpoint_during_a_rescore_batch_waits_and_applies_on_top(monkeypatch):
    activate()
    leads = [good_fit() for _ in range(3)]
    for lead in leads:
        TouchpointFactory(
            lead=lead, kind="webinar_attended", occurred_at=timezone.now() - dt.timedelta(days=2)
        )
    target = leads[1]
    locked, go = threading.Event(), threading.Event()
    real = scoring_sql.rescore_batch_postgres

    def paused(*args, **kwargs):
        locked.set()  # the batch holds its rows now
        assert go.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring_sql, "rescore_batch_postgres", paused)
    run = scoring.scoring_run_create()
    errors: list = []
    rescore = in_thread(lambda: scoring.scoring_run_execute(run_id=run.pk), errors)
    assert locked.wait(60)
    touch = in_thread(
        lambda: services.touchpoint_record(
            lead=Lead.objects.get(pk=target.pk), kind="email_click", system="tracker"
        ),
        errors,
    )
    wait_for_lock_waiters(1)  # the touchpoint waits for the batch
    go.set()
    rescore.join(timeout=60)
    touch.join(timeout=60)
    assert errors == []
    assert ScoringRun.objects.get(pk=run.pk).status == RunStatus.DONE
    for lead in leads:
        assert_exact(lead)
    assert Lead.objects.get(pk=target.pk).engagement_sums["web"] == pytest.approx(4, abs=1e-3)


def test_a_rescore_waits_for_a_touchpoint_in_flight_and_includes_it():
    activate()
    leads = [good_fit() for _ in range(3)]
    target = leads[2]
    run = scoring.scoring_run_create()
    errors: list = []
    with transaction.atomic():
        services.touchpoint_record(lead=target, kind="demo_request", system="tracker")
        rescore = in_thread(lambda: scoring.scoring_run_execute(run_id=run.pk), errors)
        wait_for_lock_waiters(1)  # the batch waits for the touchpoint's transaction
        time.sleep(0.05)
    rescore.join(timeout=60)
    assert errors == []
    assert ScoringRun.objects.get(pk=run.pk).processed == 3
    target = Lead.objects.get(pk=target.pk)
    assert target.engagement_sums == {"_": pytest.approx(60, abs=1e-3)}
    assert target.stage == Stage.MQL  # moved by its event, not by the rescore
    for lead in leads:
        assert_exact(lead)


@pytest.mark.integration
def test_activation_rescores_on_a_real_worker(celery_worker_process, people):
    leads = [good_fit() for _ in range(4)]
    active = ScoringModel.objects.get(status="active")
    draft = scoring.scoring_model_copy(model=active, by=people["marketer"])
    spec = {**{f: getattr(draft, f) for f in ("fit_rules", "engagement_rules", "group_caps")}}
    scoring.scoring_model_update(
        model=draft,
        by=people["marketer"],
        spec={
            **spec,
            "half_life_days": 14.0,
            "mql_total": 90,
            "mql_fit": 40,
            "grade_a": 60,
            "grade_b": 40,
            "grade_c": 20,
        },
    )
    scoring.scoring_model_propose(model=draft, by=people["marketer"])
    scoring.scoring_model_approve(model=draft, by=people["marketing_manager"])
    scoring.scoring_model_approve(model=draft, by=people["sales_manager"])
    run = ScoringRun.objects.get(model=draft)
    wait_for(lambda: ScoringRun.objects.get(pk=run.pk).status == RunStatus.DONE, timeout=60)
    assert set(
        Lead.objects.filter(pk__in=[x.pk for x in leads]).values_list("scored_with", flat=True)
    ) == {draft.pk}
