"""Runs read from the database by the pages, whichever process wrote them: the fine-tuning run
(its state and the one-at-a-time lock, in `TuningRun`) and the activation rescore's progress (in
`ScoringRun`). SQLite and PostgreSQL; the races between two connections need PostgreSQL."""

import contextvars
import datetime as dt
import io
import threading
from html import escape

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from leads.models import Lead, ScoringModel, ScoringRun, Stage
from leads.scoring import services as scoring
from leads.scoring.models import ModelStatus, RunKind, RunStatus, TuningRun, TuningState
from leads.scoring.rules import spec_of
from leads.scoring.tuning import scoring_tune_queue
from leads.scoring.tuning import status as tuning_status_module
from leads.scoring.tuning.status import (
    LOCK_TTL,
    TuningBusy,
    tuning_lock,
    tuning_status,
    tuning_status_record,
    tuning_unlock,
)
from leads.scoring.tuning_tasks import scoring_tune as scoring_tune_task
from tests.conftest import wait_for
from tests.factories import LeadFactory, TouchpointFactory
from tests.leads.test_scoring_concurrency import wait_for_lock_waiters

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two connections racing for a row need PostgreSQL; SQLite serialises every write",
)


@pytest.fixture(autouse=True)
def _no_claim_left_over():
    """Each test starts as a fresh process would: this thread holds no tuning claim (a test that
    claims and never unlocks would otherwise leave it to the next)."""
    token = tuning_status_module._claimed.set(None)
    yield
    tuning_status_module._claimed.reset(token)


def _activate_lower_bar(marketer, marketing_manager, sales_manager) -> ScoringModel:
    """A version with a lower MQL line, signed off by both managers; the outbox has not run, so
    its rescore is queued as a worker would find it."""
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Lower bar")
    scoring.scoring_model_update(
        model=draft, by=marketer, spec={**spec_of(draft), "mql_total": 0, "mql_fit": 0}
    )
    scoring.scoring_model_propose(model=draft, by=marketer)
    scoring.scoring_model_approve(model=draft, by=marketing_manager)
    scoring.scoring_model_approve(model=draft, by=sales_manager)
    draft.refresh_from_db()
    assert draft.status == ModelStatus.ACTIVE
    return draft


# --- the rescore's progress on the scoring pages -----------------------------------------------


def test_the_scoring_pages_show_a_queued_activation_rescore(
    client, rep, marketer, marketing_manager, sales_manager
):
    LeadFactory.create_batch(3)
    model = _activate_lower_bar(marketer, marketing_manager, sales_manager)
    run = ScoringRun.objects.get(model=model)
    assert (run.kind, run.status) == (RunKind.ACTIVATION, RunStatus.QUEUED)
    client.force_login(rep)
    for url in (reverse("leads:scoring"), reverse("leads:scoring_model", args=[model.pk])):
        html = client.get(url).content.decode()
        assert f"Rescoring with {model.label}:</strong> queued, waiting for a worker" in html


def test_the_scoring_pages_show_a_running_rescores_progress(
    client, rep, marketer, marketing_manager, sales_manager
):
    model = _activate_lower_bar(marketer, marketing_manager, sales_manager)
    # as a worker leaves it between two batches
    ScoringRun.objects.filter(model=model).update(
        status=RunStatus.RUNNING,
        total=1_000_000,
        processed=420_000,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    client.force_login(rep)
    for url in (reverse("leads:scoring"), reverse("leads:scoring_model", args=[model.pk])):
        html = client.get(url).content.decode()
        assert f"Rescoring with {model.label}:</strong> 42% (420,000 of 1,000,000 leads)" in html
    # the version it replaced has no rescore to show
    old = ScoringModel.objects.filter(status=ModelStatus.RETIRED).first()
    html = client.get(reverse("leads:scoring_model", args=[old.pk])).content.decode()
    assert 'id="rescore"' not in html


def test_a_failed_rescore_says_where_it_stopped_and_a_finished_one_is_not_shown(
    client, rep, marketer, marketing_manager, sales_manager
):
    model = _activate_lower_bar(marketer, marketing_manager, sales_manager)
    ScoringRun.objects.filter(model=model).update(
        status=RunStatus.FAILED, total=10, processed=3, message="value out of range"
    )
    client.force_login(rep)
    html = client.get(reverse("leads:scoring")).content.decode()
    assert f"The rescore with {model.label} stopped at 30%</strong> (3 of 10 leads)" in html
    assert "value out of range" in html and "python manage.py rescore</code> continues it" in html
    ScoringRun.objects.filter(model=model).update(status=RunStatus.DONE, processed=10)
    for url in (reverse("leads:scoring"), reverse("leads:scoring_model", args=[model.pk])):
        assert 'id="rescore"' not in client.get(url).content.decode()


def test_the_rescore_command_continues_the_activations_queued_run_and_the_page_follows(
    client, rep, marketer, marketing_manager, sales_manager
):
    leads = LeadFactory.create_batch(3, company_size=500)
    TouchpointFactory(lead=leads[0], kind="demo_request")
    model = _activate_lower_bar(marketer, marketing_manager, sales_manager)
    queued = ScoringRun.objects.get(model=model)

    out = io.StringIO()
    call_command("rescore", "--batch-size", "2", stdout=out)

    assert ScoringRun.objects.filter(model=model).count() == 1  # no second run
    queued.refresh_from_db()
    assert (queued.status, queued.processed, queued.batch_size) == (RunStatus.DONE, 3, 2)
    assert f"Continuing rescore run {queued.pk} (after activation, queued)" in out.getvalue()
    assert {lead.scored_with_id for lead in Lead.objects.all()} == {model.pk}
    # it is the activation's run: the leads the new version qualifies become MQLs
    assert set(Lead.objects.values_list("stage", flat=True)) == {Stage.MQL}
    client.force_login(rep)
    assert 'id="rescore"' not in client.get(reverse("leads:scoring")).content.decode()


# --- the fine-tuning run's state, in the database -------------------------------------------------


def elsewhere(call):
    """Call as another process would: without this one's claim (a context of its own)."""
    return contextvars.Context().run(call)


def started(target) -> threading.Thread:
    """`target` running in another thread, on its own database connection (as another process
    would); a failure there leaves its result out, which the test then finds."""

    def run():
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def in_thread(target) -> None:
    """Run `target` to its end in another thread, on its own connection; re-raise its error."""
    errors: list[BaseException] = []

    def run():
        try:
            target()
        except BaseException as error:  # surfaced in the test's thread
            errors.append(error)

    thread = started(run)
    thread.join(timeout=60)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


@pytest.mark.django_db(transaction=True)
def test_a_state_recorded_by_another_connection_is_read_without_any_cache():
    def worker():
        assert tuning_lock()
        tuning_status_record(state="running", message="Learning from outcomes.", by="tuning")

    in_thread(worker)
    cache.clear()
    seen = tuning_status()
    assert (seen["state"], seen["message"], seen["by"]) == (
        "running",
        "Learning from outcomes.",
        "tuning",
    )
    # the lock is the row: this connection may not run while it is running
    assert not tuning_lock()


def test_a_run_goes_from_queued_to_its_result_on_one_row(marketer):
    queued = tuning_status_record(state="queued", message="Waiting for a worker.", by="marketer")
    assert tuning_status()["state"] == "queued"
    assert tuning_lock()
    tuning_status_record(state="running", message="Learning from outcomes.", by="marketer")
    model = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    tuning_status_record(
        state="proposed",
        message="Proposed it.",
        by="marketer",
        model_id=model.pk,
        summary="Learned from 60 leads.",
        outcome="won",
    )
    tuning_unlock()
    run = TuningRun.objects.get()
    assert run.pk == queued["id"]
    assert (run.state, run.by, run.model, run.summary, run.options) == (
        TuningState.PROPOSED,
        "marketer",
        model,
        "Learned from 60 leads.",
        {"outcome": "won"},
    )
    assert run.created_at <= run.started_at <= run.finished_at
    assert tuning_status()["outcome"] == "won"
    # the lock was given back with the result
    assert tuning_lock()


def test_the_lock_refuses_a_second_run_until_the_first_ends():
    assert tuning_lock()
    assert not tuning_lock()
    assert TuningRun.objects.filter(state=TuningState.RUNNING).count() == 1
    tuning_status_record(state="unchanged", message="Identical to the active version.")
    tuning_unlock()
    assert tuning_lock()
    tuning_unlock()  # ended without recording a result: it says so, and frees the lock
    latest = TuningRun.objects.first()
    assert (latest.state, latest.message) == (
        TuningState.FAILED,
        "The run stopped without a result.",
    )
    assert tuning_lock()


# another connection must see this one's claim: committed, not inside the test's transaction
@pytest.mark.django_db(transaction=True)
def test_a_run_running_longer_than_the_lock_ttl_is_taken_over():
    assert tuning_lock()
    dead = TuningRun.objects.get()
    TuningRun.objects.filter(pk=dead.pk).update(
        started_at=timezone.now() - dt.timedelta(seconds=LOCK_TTL - 60)
    )
    assert not tuning_lock()  # slow, not dead
    TuningRun.objects.filter(pk=dead.pk).update(
        started_at=timezone.now() - dt.timedelta(seconds=LOCK_TTL + 60)
    )
    assert elsewhere(tuning_lock)
    dead.refresh_from_db()
    assert dead.state == TuningState.FAILED and "its worker stopped" in dead.message
    assert TuningRun.objects.filter(state=TuningState.RUNNING).exclude(pk=dead.pk).count() == 1


# another connection must see this one's claim: committed, not inside the test's transaction
@pytest.mark.django_db(transaction=True)
def test_a_taken_over_run_that_finishes_after_all_keeps_its_result_on_its_own_row():
    assert tuning_lock()
    TuningRun.objects.update(started_at=timezone.now() - dt.timedelta(seconds=LOCK_TTL + 1))
    assert elsewhere(tuning_lock)  # another process takes it over meanwhile
    tuning_status_record(state="unchanged", message="Slow but done.")
    tuning_unlock()
    slow, taker = TuningRun.objects.order_by("id")
    assert (slow.state, slow.message) == (TuningState.UNCHANGED, "Slow but done.")
    assert taker.state == TuningState.RUNNING  # untouched by the slow run's result and unlock


def test_queueing_is_refused_while_a_run_waits_or_runs_and_a_run_left_waiting_expires():
    tuning_status_record(state="queued", message="Waiting for a worker.", by="marketer")
    with pytest.raises(TuningBusy, match="already waiting for a worker \\(queued by marketer"):
        tuning_status_record(state="queued", by="other")
    assert tuning_lock()
    with pytest.raises(TuningBusy, match="in progress \\(started by marketer"):
        tuning_status_record(state="queued", by="other")
    tuning_status_record(state="failed", message="Too few outcomes.")
    tuning_unlock()
    # queued an hour ago and no worker came: closed, and a new one may wait
    tuning_status_record(state="queued", by="marketer")
    TuningRun.objects.filter(state=TuningState.QUEUED).update(
        created_at=timezone.now() - dt.timedelta(seconds=LOCK_TTL + 1)
    )
    tuning_status_record(state="queued", by="other")
    states = list(TuningRun.objects.order_by("id").values_list("state", "message"))
    assert states[-2:] == [
        (TuningState.FAILED, "No worker took it up within an hour; a later click queued another."),
        (TuningState.QUEUED, ""),
    ]


def test_a_worker_arriving_late_still_runs_the_queued_run():
    queued = tuning_status_record(state="queued", by="marketer")
    TuningRun.objects.update(created_at=timezone.now() - dt.timedelta(seconds=LOCK_TTL + 1))
    assert tuning_lock()
    run = TuningRun.objects.get()
    assert (run.pk, run.state, run.by) == (queued["id"], TuningState.RUNNING, "marketer")


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("before", ["nothing", "queued", "stale"])
def test_two_workers_claiming_at_once_get_one_lock(before):
    if before == "queued":
        tuning_status_record(state="queued", by="marketer")
    if before == "stale":
        TuningRun.objects.create(
            state=TuningState.RUNNING,
            started_at=timezone.now() - dt.timedelta(seconds=LOCK_TTL + 1),
        )
    start = threading.Barrier(2)
    results: list[bool] = []

    def worker():
        start.wait(timeout=30)
        results.append(tuning_lock())

    threads = [started(worker) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False, True]
    assert TuningRun.objects.filter(state=TuningState.RUNNING).count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_claim_racing_an_uncommitted_claim_waits_for_it_and_is_refused():
    claimed, release = threading.Event(), threading.Event()

    def first():
        with transaction.atomic():
            # what tuning_lock() writes, held open: the second claim cannot see it yet
            TuningRun.objects.create(state=TuningState.RUNNING, started_at=timezone.now())
            claimed.set()
            release.wait(timeout=30)

    holder = started(first)
    assert claimed.wait(timeout=30)
    results: list[bool] = []
    second = started(lambda: results.append(tuning_lock()))
    wait_for_lock_waiters(1)  # the second claim waits on the unique index
    release.set()
    holder.join(timeout=30)
    second.join(timeout=30)
    assert results == [False]
    assert TuningRun.objects.filter(state=TuningState.RUNNING).count() == 1


# --- the tuning page ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_tuning_page_follows_a_run_a_worker_records_elsewhere(client, marketer):
    client.force_login(marketer)
    scoring_tune_queue(by=marketer, outcome="won", holdout=0.3, seed=0)
    html = client.get(reverse("leads:tuning")).content.decode()
    assert '<span class="badge">Queued</span>\n  Waiting for a worker.' in html
    assert f"({escape(str(marketer))}, queued " in html

    running, go_on = threading.Event(), threading.Event()
    model = ScoringModel.objects.get(status=ModelStatus.ACTIVE)

    def worker():
        assert tuning_lock()
        tuning_status_record(state="running", message="Learning from outcomes.", by="marketer")
        running.set()
        assert go_on.wait(timeout=30)
        tuning_status_record(
            state="proposed", message="Proposed it for sign-off.", by="marketer", model_id=model.pk
        )
        tuning_unlock()

    thread = started(worker)
    assert running.wait(timeout=30)
    cache.clear()
    html = client.get(reverse("leads:tuning")).content.decode()
    assert '<span class="badge">Running</span>\n  Learning from outcomes.' in html
    go_on.set()
    thread.join(timeout=30)
    html = client.get(reverse("leads:tuning")).content.decode()
    assert '<span class="badge">Proposed a version</span>\n  Proposed it for sign-off.' in html
    assert f'<a href="{reverse("leads:scoring_model", args=[model.pk])}">Open {model.label}' in html
    assert TuningRun.objects.count() == 1  # the queued run became the running one


def test_a_second_click_while_a_run_waits_is_a_form_error(client, marketer):
    client.force_login(marketer)
    scoring_tune_queue(by=marketer)
    response = client.post(
        reverse("leads:tuning"), {"outcome": "won", "holdout": "0.3", "seed": "0"}
    )
    assert response.status_code == 400
    assert (
        f"A tuning run is already waiting for a worker (queued by {escape(str(marketer))} at "
        in response.content.decode()
    )
    assert TuningRun.objects.count() == 1


def test_a_click_with_the_broker_down_leaves_no_run_waiting(client, marketer, monkeypatch):
    def unreachable(**kwargs):
        raise BrokerUnreachable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(scoring_tune_task, "delay", unreachable)
    client.force_login(marketer)
    page = client.post(
        reverse("leads:tuning"), {"outcome": "won", "holdout": "0.3", "seed": "0"}, follow=True
    )
    html = page.content.decode()
    assert "The task queue is not reachable right now" in html
    assert '<span class="badge">Failed</span>\n  The task queue was not reachable' in html
    run = TuningRun.objects.get()
    assert (run.state, run.by) == (TuningState.FAILED, str(marketer))
    monkeypatch.undo()  # back up: the next click runs (in-process in tests)
    client.post(reverse("leads:tuning"), {"outcome": "won", "holdout": "0.3", "seed": "0"})
    assert TuningRun.objects.count() == 2


def test_a_click_that_ran_shows_its_result_and_the_runs_before_it(
    client, marketer, django_assert_num_queries
):
    tuning_status_record(state="unchanged", message="Identical to the active version.", by="x")
    client.force_login(marketer)
    page = client.post(
        reverse("leads:tuning"), {"outcome": "won", "holdout": "0.3", "seed": "0"}, follow=True
    )
    html = page.content.decode()
    # no outcomes in this database: the run says why, on the row the click queued
    assert '<span class="badge">Failed</span>\n  Too few outcomes to learn from' in html
    run = TuningRun.objects.first()
    assert (run.by, run.started_at is not None, run.finished_at is not None) == (
        str(marketer),
        True,
        True,
    )
    history = html.split('id="tuning-runs"')[1]
    assert "Identical to the active version." in history and "Too few outcomes" not in history
    # session, user, the bell's unread count, the tuned versions, and the runs with their versions
    with django_assert_num_queries(5):
        client.get(reverse("leads:tuning"))


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_with_per_process_caches_the_page_sees_what_a_real_worker_recorded(
    request, monkeypatch, settings, client, marketer
):
    """`make run`: the web process and a separate worker, each with its own in-memory cache."""
    monkeypatch.setenv("CACHE_URL", "")  # the worker's environment: no shared cache
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    request.getfixturevalue("celery_worker_process")
    client.force_login(marketer)
    client.post(reverse("leads:tuning"), {"outcome": "won", "holdout": "0.3", "seed": "0"})

    def result() -> str | None:
        html = client.get(reverse("leads:tuning")).content.decode()
        return html if "Too few outcomes to learn from" in html else None

    html = wait_for(result, timeout=60)  # the worker ran it: this database has no outcomes
    assert '<span class="badge">Failed</span>' in html
    assert TuningRun.objects.get().by == str(marketer)
