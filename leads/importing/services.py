"""The CSV import of leads: one service behind the upload page (through a Celery job), the
`import_leads` command and the task. Set-based: rows are read in batches, each batch costs one
query for the leads it names, bulk inserts and bulk updates, and is written in one transaction."""

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
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
    "leads_import",
]

BATCH_SIZE = 2000

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
    """Store the upload and queue the job; a mapping that does not fit the file is refused now."""
    from leads.importing.tasks import import_job_run as import_job_run_task

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
    transaction.on_commit(lambda: import_job_run_task.delay(job.id))
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


def import_job_run(*, job_id: int) -> None:
    """Run a queued import job once; a second delivery of the same job does nothing."""
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None:
        return
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    if claimed != 1:
        return
    jobs = ImportJob.objects.filter(pk=job_id)

    def report(result: ImportResult) -> None:
        if result.phase == "write_all":
            # the counts of the checking pass stay on the page: this pass's writes are only
            # visible to others when its one transaction commits
            jobs.update(message=PHASE_MESSAGES[result.phase])
            return
        jobs.update(message=PHASE_MESSAGES[result.phase], **_job_counts(result))

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
    except DomainError as exc:
        jobs.update(status=ImportStatus.FAILED, message=exc.message, finished_at=timezone.now())
        return
    except Exception as exc:
        written = (
            "nothing was written" if job.dry_run or job.atomic else "earlier batches were kept"
        )
        jobs.update(
            status=ImportStatus.FAILED,
            message=f"The import stopped on an unexpected error ({exc.__class__.__name__}); "
            f"{written}. Importing the file again is safe.",
            finished_at=timezone.now(),
        )
        raise
    jobs.update(
        status=ImportStatus.DONE,
        message=result.summary(),
        finished_at=timezone.now(),
        **_job_counts(result),
    )
