"""Import jobs behind the upload page: a job whose worker died is resumed, a live one is left
alone, a job runs once however often it is delivered, and a finished job keeps its report but
not its file."""

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from alignment.celery import app as celery_app
from leads.importing import services
from leads.importing.services import IMPORT_QUEUED_AFTER, IMPORT_STALE_AFTER, import_jobs_stalled
from leads.importing.tasks import import_job_run, import_jobs_resume
from leads.models import ImportJob, ImportStatus, Lead

pytestmark = pytest.mark.django_db

THREE_ROWS = b"email,company\na@example.com,A\nb@example.com,B\nc@example.com,C\n"


class WorkerDied(BaseException):
    """What a killed worker leaves behind: nothing after this point runs, nothing is tidied."""


def make_job(user, content: bytes = THREE_ROWS, **fields) -> ImportJob:
    return ImportJob.objects.create(
        created_by=user,
        file=SimpleUploadedFile("leads.csv", content),
        filename="leads.csv",
        **fields,
    )


def on_progress(monkeypatch, action):
    """Run the job one row per batch and call `action(result)` after each progress report."""
    real = services.leads_import

    def spy(**kwargs):
        report = kwargs["progress"]

        def progress(result):
            report(result)
            action(result)

        return real(**{**kwargs, "progress": progress, "batch_size": 1})

    monkeypatch.setattr(services, "leads_import", spy)


def die_when(monkeypatch, phase: str, processed: int):
    def action(result):
        if result.phase == phase and result.processed_rows == processed:
            raise WorkerDied

    on_progress(monkeypatch, action)


def make_stale(job: ImportJob) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - IMPORT_STALE_AFTER - timedelta(seconds=1)
    )


def stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


# --- a worker dies ---------------------------------------------------------------------------


def test_a_job_whose_worker_died_is_resumed_by_the_beat_task_and_finished(
    client, marketer, monkeypatch, settings
):
    job = make_job(marketer)
    die_when(monkeypatch, "write", processed=2)  # row 2's batch is never committed
    with pytest.raises(WorkerDied):
        import_job_run(job.pk)
    monkeypatch.undo()
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count) == ("running", 1, 1)
    assert list(Lead.objects.values_list("email", flat=True)) == ["a@example.com"]
    make_stale(job)

    import_jobs_resume()

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    # the row the dead worker committed is read again and changes nothing
    assert (job.processed_rows, job.created_count, job.unchanged_count) == (3, 2, 1)
    assert Lead.objects.count() == 3
    assert "stopped after 1 of 3 rows (1 created and 0 updated by then)" in job.message
    assert job.message.startswith("Imported.")
    client.force_login(marketer)
    status = client.get(reverse("leads:import_status", args=[job.pk])).json()
    assert (status["status"], status["resumed"]) == ("done", 1)
    page = client.get(reverse("leads:import_job", args=[job.pk])).content.decode()
    assert '<span class="badge" id="job-resumed">resumed after its worker stopped' in page
    assert "Resumed: the worker running this import stopped after 1 of 3 rows" in page
    assert stored_files(settings) == []


def test_an_all_or_nothing_job_that_died_while_writing_starts_over(marketer, monkeypatch):
    job = make_job(marketer, atomic=True)
    die_when(monkeypatch, "write_all", processed=2)
    with pytest.raises(WorkerDied):
        import_job_run(job.pk)
    monkeypatch.undo()
    assert not Lead.objects.exists()  # the one transaction died with its worker
    make_stale(job)

    import_jobs_resume()

    job.refresh_from_db()
    assert (job.status, job.created_count, job.unchanged_count) == ("done", 3, 0)
    assert "nothing had been written (all or nothing), so the import started over" in job.message
    assert Lead.objects.count() == 3


def test_a_job_with_a_fresh_heartbeat_is_left_alone(marketer, settings):
    now = timezone.now()
    job = make_job(
        marketer,
        status=ImportStatus.RUNNING,
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - IMPORT_STALE_AFTER + timedelta(minutes=1),
        message="Importing.",
    )

    assert import_jobs_stalled() == []
    import_jobs_resume()
    import_job_run(job.pk)  # a stray delivery

    job.refresh_from_db()
    assert (job.status, job.message, job.processed_rows) == ("running", "Importing.", 0)
    assert job.started_at == now - timedelta(hours=1)
    assert not Lead.objects.exists()
    assert len(stored_files(settings)) == 1


def test_a_job_queued_for_a_while_is_queued_again_and_a_new_one_waits(marketer):
    lost = make_job(marketer)
    ImportJob.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - IMPORT_QUEUED_AFTER - timedelta(seconds=1)
    )
    waiting = make_job(marketer, b"email\nd@example.com\n")

    import_jobs_resume()

    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert (lost.status, lost.created_count) == ("done", 3)
    assert "Resumed" not in lost.message  # it had never started
    assert waiting.status == ImportStatus.QUEUED


def test_a_job_that_ran_before_heartbeats_existed_is_resumed_by_its_start(marketer):
    job = make_job(
        marketer,
        status=ImportStatus.RUNNING,
        started_at=timezone.now() - IMPORT_STALE_AFTER - timedelta(seconds=1),
        heartbeat_at=None,
    )

    assert import_jobs_stalled() == [job.pk]
    import_jobs_resume()

    job.refresh_from_db()
    assert (job.status, job.created_count) == ("done", 3)
    assert "stopped before it wrote a batch" in job.message


def test_a_job_that_keeps_killing_its_worker_is_given_up_after_three_resumes(marketer, settings):
    earlier = "\n".join(f"{services.RESUMED} the worker ... ({n})." for n in range(3))
    job = make_job(
        marketer,
        status=ImportStatus.RUNNING,
        started_at=timezone.now() - timedelta(hours=1),
        message=f"Importing.\n{earlier}",
    )
    make_stale(job)

    import_jobs_resume()

    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.message.startswith("Stopped: the worker running this import died 4 times")
    assert not Lead.objects.exists()
    assert stored_files(settings) == []


def test_a_resumed_job_whose_file_is_gone_fails_with_the_reason(marketer):
    job = make_job(marketer, status=ImportStatus.RUNNING, started_at=timezone.now())
    make_stale(job)
    job.file.storage.delete(job.file.name)

    import_jobs_resume()

    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "The uploaded file is no longer there; earlier batches were kept." in job.message


# --- delivered twice -------------------------------------------------------------------------


def test_a_second_delivery_while_the_job_runs_or_after_it_does_nothing(marketer, monkeypatch):
    job = make_job(marketer)
    states = []

    def second_delivery(result):
        if result.processed_rows == 1:
            import_job_run(job.pk)
            states.append(ImportJob.objects.values_list("status", "processed_rows").get())

    on_progress(monkeypatch, second_delivery)

    import_job_run(job.pk)
    monkeypatch.undo()
    job.refresh_from_db()
    finished_at = job.finished_at
    import_job_run(job.pk)

    assert states == [("running", 1)]
    job.refresh_from_db()
    assert (job.status, job.created_count, job.unchanged_count) == ("done", 3, 0)
    assert "Resumed" not in job.message
    assert job.finished_at == finished_at
    assert Lead.objects.count() == 3


def test_a_worker_presumed_dead_stops_when_it_comes_back(marketer, monkeypatch, caplog):
    job = make_job(marketer)
    stalled = []

    def stall_then_get_resumed(result):
        if result.phase == "write" and result.processed_rows == 1 and not stalled:
            stalled.append(True)
            make_stale(job)
            import_jobs_resume()  # another worker takes over and finishes the job

    on_progress(monkeypatch, stall_then_get_resumed)

    import_job_run(job.pk)  # the slow worker's next write finds the job taken: it stops quietly

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    # the report is the resumer's, not overwritten by the slow worker
    assert (job.created_count, job.unchanged_count, job.processed_rows) == (2, 1, 3)
    assert "stopped after 1 of 3 rows" in job.message
    assert Lead.objects.count() == 3
    assert f"Import job {job.pk} was resumed by another worker" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_all_or_nothing_job_inside_its_transaction_is_alive_though_its_heartbeat_is_old(
    marketer,
):
    """PostgreSQL: its heartbeat only commits with the transaction, but its row is locked."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks; its one writer at a time keeps the job alone")
    job = make_job(marketer, status=ImportStatus.RUNNING, started_at=timezone.now())
    make_stale(job)
    locked, release = threading.Event(), threading.Event()

    def writing_worker():
        try:
            with transaction.atomic():
                ImportJob.objects.filter(pk=job.pk).update(message="Writing every row")
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=writing_worker)
    worker.start()
    try:
        assert locked.wait(10)
        assert import_jobs_stalled() == []
        import_job_run(job.pk)
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.RUNNING
    finally:
        release.set()
        worker.join(10)
    assert import_jobs_stalled() == [job.pk]


# --- the finished job ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "options", "status", "message", "reason"),
    [
        (b"email\na@example.com\nbad\n", {}, "done", "Imported; the bad rows", "not a valid"),
        (b"email\na@example.com\nbad\n", {"dry_run": True}, "done", "Dry run", "not a valid"),
        (
            b"email\na@example.com\n",
            {"mapping": {"fields": {"email": "Mail"}}},
            "failed",
            "refers to column 'Mail'",
            "",
        ),
    ],
    ids=["done", "dry-run", "failed"],
)
def test_a_finished_job_deletes_its_file_and_keeps_its_report(
    client, marketer, settings, content, options, status, message, reason
):
    job = make_job(marketer, content, **options)
    assert len(stored_files(settings)) == 1

    import_job_run(job.pk)

    job.refresh_from_db()
    assert stored_files(settings) == []
    assert not job.file
    assert job.status == status and message in job.message
    if reason:
        assert (job.processed_rows, job.created_count, job.error_count) == (2, 1, 1)
        assert reason in job.errors[0]["reason"]
    client.force_login(marketer)
    page = client.get(reverse("leads:import_job", args=[job.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert '<p class="muted" id="job-file-note">The uploaded file was deleted' in text
    assert reason in text


def test_the_beat_schedule_resumes_imports_every_few_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["leads-import-resume"]

    assert entry["task"] == import_jobs_resume.name
    assert entry["task"] in celery_app.tasks
    # a resume older than the next one is worthless
    assert entry["options"]["expires"] < 5 * 60
    assert entry["schedule"].minute == set(range(0, 60, 5))
