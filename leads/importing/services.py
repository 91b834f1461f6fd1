"""The CSV import of leads: one service behind the upload page (through a Celery job), the
`import_leads` command and the task. Set-based: rows are read in batches, each batch costs one
query for the leads it names, bulk inserts and bulk updates, and is written in one transaction.

A job whose worker died is resumed: its heartbeat (written with every batch) goes stale, the beat
task `leads.import_jobs_resume` queues it again, and the run claims it back. A resumed job reads
its file again from the first row; the rows its first worker committed then count as unchanged
(an import of the same file twice changes nothing), and an all-or-nothing import or a dry run had
written nothing, so it simply starts over. Once a job is finished its uploaded file is deleted; the
report (counts, bad rows, message) stays on the job."""

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from leads.importing.csvfile import CsvInfo, csv_inspect, csv_rows
from leads.importing.importer import Importer
from leads.importing.mapping import (
    Mapping,
    Plan,
    mapping_from_dict,
    normalise_delimiter,
    normalise_encoding,
    plan_for_header,
)
from leads.importing.result import MAX_STORED_ERRORS, ImportResult, RowError
from leads.models import ImportJob, ImportStatus

__all__ = [
    "MAX_STORED_ERRORS",
    "ImportResult",
    "RowError",
    "import_job_create",
    "import_job_run",
    "import_jobs_stalled",
    "leads_import",
    "resume_notes",
]

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
# a batch takes seconds; a running job without a heartbeat for this long lost its worker
IMPORT_STALE_AFTER = timedelta(minutes=5)
# a job still queued after this was most likely lost by the broker: it is queued again
IMPORT_QUEUED_AFTER = timedelta(minutes=5)
# a file that kills its worker every time (out of memory, say) is not retried for ever
MAX_RESUMES = 3

Progress = Callable[[ImportResult], None]


def _batches(
    records: Iterator[tuple[int, list[str]]], size: int
) -> Iterator[list[tuple[int, list[str]]]]:
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def _binary(file: BinaryIO | str | Path) -> Iterator[BinaryIO]:
    if isinstance(file, str | Path):
        try:
            handle = open(file, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise DomainError(f"Cannot read {file}: {exc.strerror}.") from None
        with handle:
            yield handle
    else:
        yield file


def _pass(
    fileobj: BinaryIO,
    *,
    info: CsvInfo,
    plan: Plan,
    mapping: Mapping,
    by: User | None,
    result: ImportResult,
    write: bool,
    now: datetime,
    progress: Progress | None,
    batch_size: int,
) -> ImportResult:
    importer = Importer(plan=plan, mapping=mapping, by=by, result=result, write=write, now=now)
    for records in _batches(csv_rows(fileobj, info), batch_size):
        # a written batch and its progress report commit together: a job's counts and heartbeat
        # never leave out a batch that was written, nor count one that was not
        with transaction.atomic() if write and progress else contextlib.nullcontext():
            importer.run_batch(records)
            if progress:
                progress(result)
    return result


def leads_import(
    *,
    file: BinaryIO | str | Path,
    by: User | None,
    mapping: Mapping | dict | None = None,
    filename: str = "",
    delimiter: str = "",
    encoding: str = "",
    dry_run: bool = False,
    atomic: bool = False,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Create and update leads from a CSV file. `by=None` is the system (the command).

    Good rows are written batch by batch and bad rows are reported; with `atomic` nothing is
    written unless every row is good; with `dry_run` nothing is written at all."""
    if by is not None:
        require(by, Action.LEAD_IMPORT)
    if not isinstance(mapping, Mapping):
        mapping = mapping_from_dict(mapping)
    delimiter = normalise_delimiter(delimiter) if delimiter else mapping.delimiter
    encoding = normalise_encoding(encoding) if encoding else mapping.encoding
    if not filename and isinstance(file, str | Path):
        filename = Path(file).name
    now = timezone.now()

    with _binary(file) as fileobj:
        info = csv_inspect(fileobj, delimiter=delimiter, encoding=encoding)
        plan = plan_for_header(mapping, info.header)

        def fresh(phase: str) -> ImportResult:
            return ImportResult(
                filename=filename or "the file",
                encoding=info.encoding,
                delimiter=info.delimiter,
                dry_run=dry_run,
                atomic=atomic,
                phase=phase,
                total_rows=info.total_rows,
            )

        common = dict(
            info=info,
            plan=plan,
            mapping=mapping,
            by=by,
            now=now,
            progress=progress,
            batch_size=batch_size,
        )
        if dry_run or atomic:
            # a first pass that writes nothing: the whole report for a dry run, and for an
            # all-or-nothing import the proof that no row is bad before a long transaction starts
            result = fresh("check")
            if progress:
                progress(result)
            _pass(fileobj, result=result, write=False, **common)
            if dry_run or result.bad_rows:
                return result
            result = fresh("write_all")
            if progress:
                progress(result)
            with transaction.atomic():
                _pass(fileobj, result=result, write=True, **common)
                if result.bad_rows:
                    # the data changed since the check (another import, an edit): still all-or-nothing
                    transaction.set_rollback(True)
                    return result
            result.written = True
            return result
        result = fresh("write")
        if progress:
            progress(result)
        _pass(fileobj, result=result, write=True, **common)
        result.written = True
        return result


# --- the import job behind the upload page ---------------------------------------------------


def import_job_create(
    *,
    by: User,
    file: UploadedFile,
    mapping: dict | None = None,
    delimiter: str = "",
    encoding: str = "",
    dry_run: bool = False,
    atomic: bool = False,
) -> ImportJob:
    """Store the upload as a queued job; a mapping that does not fit the file is refused now.

    The caller queues the task (`leads.importing.tasks.import_job_run`) after commit."""
    require(by, Action.LEAD_IMPORT)
    parsed = mapping_from_dict(mapping)
    delimiter = normalise_delimiter(delimiter) if delimiter else ""
    encoding = normalise_encoding(encoding) if encoding else ""
    info = csv_inspect(
        file,
        delimiter=delimiter or parsed.delimiter,
        encoding=encoding or parsed.encoding,
        count_rows=False,
    )
    plan_for_header(parsed, info.header)
    file.seek(0)
    job = ImportJob.objects.create(
        created_by=by,
        file=file,
        filename=Path(file.name or "upload.csv").name[:255],
        mapping=mapping or {},
        delimiter=delimiter,
        encoding=encoding,
        dry_run=dry_run,
        atomic=atomic,
    )
    return job


PHASE_MESSAGES = {
    "check": "Checking the rows; nothing is written yet.",
    "write": "Importing.",
    "write_all": "Writing every row in one transaction; the counts appear when it ends.",
}


def _job_counts(result: ImportResult) -> dict:
    return {
        "total_rows": max(result.total_rows, 0),
        "processed_rows": result.processed_rows,
        "created_count": result.created,
        "updated_count": result.updated,
        "unchanged_count": result.unchanged,
        "error_count": result.bad_rows,
        "errors": [e.as_dict() for e in result.errors],
    }


# --- running, resuming and finishing a job ---------------------------------------------------

# each resume leaves one line starting with this in the job's message: the page shows them, and
# their number caps the resumes
RESUMED = "Resumed:"


class _JobLost(Exception):
    """Another worker resumed the job (this one looked dead to it): stop without writing."""


class _Run:
    """One worker's run of a job. The claim stamps `started_at`; every write of the run is
    conditional on that stamp, so once a resumer has taken the job over, the old worker's next
    write finds no row and the old worker stops (its uncommitted batch is rolled back)."""

    def __init__(self, job: ImportJob, started_at: datetime, notes: list[str]):
        self.job = job
        self.started_at = started_at
        self.notes = notes

    def message(self, text: str) -> str:
        return "\n".join([text, *self.notes]) if text else "\n".join(self.notes)

    def write(self, **fields) -> None:
        """Store progress and beat: a written heartbeat means the worker is alive."""
        mine = ImportJob.objects.filter(pk=self.job.pk, started_at=self.started_at)
        if mine.update(heartbeat_at=timezone.now(), **fields) != 1:
            raise _JobLost

    def finish(self, status: str, text: str, **fields) -> None:
        """End the job and delete its uploaded file; the report stays on the job."""
        self.write(
            status=status,
            message=self.message(text),
            finished_at=timezone.now(),
            file="",
            **fields,
        )
        if self.job.file.name:
            self.job.file.storage.delete(self.job.file.name)


def resume_notes(*, message: str) -> list[str]:
    """The lines a job's resumes left in its message, oldest first."""
    return [line for line in message.splitlines() if line.startswith(RESUMED)]


def _resume_note(job: ImportJob) -> str:
    if job.dry_run or job.atomic:
        kind = "a dry run" if job.dry_run else "all or nothing"
        return (
            f"{RESUMED} the worker running this import stopped before it finished; nothing had "
            f"been written ({kind}), so the import started over."
        )
    if not job.processed_rows:
        return (
            f"{RESUMED} the worker running this import stopped before it wrote a batch; the "
            "import started over."
        )
    return (
        f"{RESUMED} the worker running this import stopped after {job.processed_rows:,} of "
        f"{job.total_rows:,} rows ({job.created_count:,} created and {job.updated_count:,} "
        "updated by then). The file was read again from the first row, so the rows written "
        "before the stop count as unchanged."
    )


def _stale(now: datetime) -> Q:
    before = now - IMPORT_STALE_AFTER
    # jobs that ran before heartbeats existed have none: their start tells their age
    return Q(status=ImportStatus.RUNNING) & (
        Q(heartbeat_at__lt=before) | Q(heartbeat_at=None, started_at__lt=before)
    )


def import_jobs_stalled(*, now: datetime | None = None) -> list[int]:
    """Jobs that should be running but nobody works on: queued for a while (the broker lost the
    message), or running with a stale heartbeat (the worker died)."""
    now = now or timezone.now()
    with transaction.atomic():
        # on PostgreSQL an all-or-nothing job keeps its row locked while it writes every row in one
        # transaction (its heartbeat is not visible until then): a locked job is alive
        return list(
            ImportJob.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=ImportStatus.QUEUED, created_at__lt=now - IMPORT_QUEUED_AFTER)
                | _stale(now)
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )


def _job_claim(job_id: int) -> _Run | None:
    """Take a queued job, or a running one whose worker died; None if it is not to be run."""
    now = timezone.now()
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(skip_locked=True)
            .filter(Q(status=ImportStatus.QUEUED) | _stale(now), pk=job_id)
            .first()
        )
        if job is None:
            return None
        notes = resume_notes(message=job.message)
        fields = {"status": ImportStatus.RUNNING, "started_at": now, "heartbeat_at": now}
        if job.status == ImportStatus.RUNNING:
            notes.append(_resume_note(job))
            fields["message"] = "\n".join(notes)
        # the row lock decides on PostgreSQL; this condition decides on SQLite (no row locks)
        claimed = ImportJob.objects.filter(
            pk=job_id, status=job.status, started_at=job.started_at
        ).update(**fields)
    if claimed != 1:
        return None
    if notes:
        logger.warning("Import job %s lost its worker; resuming it (%s)", job_id, len(notes))
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    return _Run(job, now, notes)


def import_job_run(*, job_id: int) -> None:
    """Run a queued import job, or resume one whose worker died. A second delivery of the same
    job, or a delivery while a live worker runs it, does nothing."""
    run = _job_claim(job_id)
    if run is None:
        return
    try:
        _job_execute(run)
    except _JobLost:
        logger.warning("Import job %s was resumed by another worker; this one stops", job_id)


def _job_execute(run: _Run) -> None:
    job = run.job
    written = "nothing was written" if job.dry_run or job.atomic else "earlier batches were kept"
    if len(run.notes) > MAX_RESUMES:
        run.finish(
            ImportStatus.FAILED,
            f"Stopped: the worker running this import died {len(run.notes)} times before it "
            f"finished (a file too large for the worker's memory?); {written}. Upload the file "
            "again, perhaps split in parts; rows already imported count as unchanged.",
        )
        return
    if not job.file.name or not job.file.storage.exists(job.file.name):
        run.finish(
            ImportStatus.FAILED,
            f"The uploaded file is no longer there; {written}. Upload it again to import it.",
        )
        return

    def report(result: ImportResult) -> None:
        if result.phase == "write_all":
            # the counts of the checking pass stay on the page: this pass's writes are only
            # visible to others when its one transaction commits
            run.write(message=run.message(PHASE_MESSAGES[result.phase]))
            return
        run.write(message=run.message(PHASE_MESSAGES[result.phase]), **_job_counts(result))

    try:
        with job.file.open("rb") as fileobj:
            result = leads_import(
                file=fileobj,
                by=job.created_by,
                mapping=job.mapping,
                filename=job.filename,
                delimiter=job.delimiter,
                encoding=job.encoding,
                dry_run=job.dry_run,
                atomic=job.atomic,
                progress=report,
            )
    except _JobLost:
        raise
    except DomainError as exc:
        run.finish(ImportStatus.FAILED, exc.message)
        return
    except Exception as exc:
        with contextlib.suppress(_JobLost):
            run.finish(
                ImportStatus.FAILED,
                f"The import stopped on an unexpected error ({exc.__class__.__name__}); "
                f"{written}. Upload the file again to retry: rows already imported count as "
                "unchanged.",
            )
        raise
    run.finish(ImportStatus.DONE, result.summary(), **_job_counts(result))
