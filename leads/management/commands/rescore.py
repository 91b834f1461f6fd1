import time

from django.core.management.base import BaseCommand, CommandError

from alignment.lib.errors import DomainError
from leads.scoring.models import RunKind, RunStatus, ScoringRun
from leads.scoring.services import (
    DEFAULT_BATCH_SIZE,
    SCORING_SYSTEM,
    scoring_run_create,
    scoring_run_execute,
    scoring_run_in_progress,
    scoring_run_resume,
    scoring_run_unfinished,
)
from leads.services import leads_qualify


def _qualify(lead_ids: list[int]) -> None:
    leads_qualify(lead_ids=lead_ids, system=SCORING_SYSTEM)


class Command(BaseCommand):
    help = (
        "Rescore every lead with the active scoring model, in batches by id (set-based SQL on "
        "PostgreSQL). Stages are never changed: MQL crossings happen only on events. A queued, "
        "stalled or failed rescore of the active model (an activation's too) is continued after "
        "its last committed batch instead of starting a second one."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"leads per batch and transaction (default {DEFAULT_BATCH_SIZE}, or the size of "
            "the run continued)",
        )

    def handle(self, *args, batch_size: int | None, **options):
        try:
            run = self._run(batch_size)
        except DomainError as error:
            raise CommandError(error.message) from None
        started = time.monotonic()
        shown = {"percent": -10}

        def progress(current: ScoringRun) -> None:
            percent = current.progress_percent
            if percent >= shown["percent"] + 10 or current.status != RunStatus.RUNNING:
                shown["percent"] = percent
                self.stdout.write(f"  {percent:3d}%  {current.processed:,} / {current.total:,}")

        self.stdout.write(f"Rescoring with {run.model}, batches of {run.batch_size:,} leads.")
        # an activation's run moves the leads the new version qualifies, as its task does
        on_crossing = _qualify if run.kind == RunKind.ACTIVATION else None
        processed_before = run.processed
        run_id = run.pk
        try:
            run = scoring_run_execute(run_id=run_id, progress=progress, on_crossing=on_crossing)
        except Exception as error:
            # the batches committed so far stay done, and the run says where it stopped
            raise CommandError(
                f"Rescore run {run_id} stopped: {error}. Run the command again to continue it."
            ) from error
        elapsed = time.monotonic() - started
        if run is None or run.status != RunStatus.DONE:
            raise CommandError(run.message if run else "The run was taken by another process.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {run.processed - processed_before:,} leads rescored in {elapsed:.1f} s."
            )
        )
        self.stdout.write(
            "Stages are not changed by a rescore; MQL crossings happen only on events."
            + (
                f" {run.qualified_not_moved:,} leads in new, nurturing or recycled meet the MQL "
                "definition now."
                if run.qualified_not_moved
                else ""
            )
        )

    def _run(self, batch_size: int | None) -> ScoringRun:
        """The unfinished run of the active version to continue, or a new manual one."""
        run = scoring_run_unfinished()
        if run is None:
            return scoring_run_create(
                kind=RunKind.MANUAL, batch_size=batch_size or DEFAULT_BATCH_SIZE
            )
        if scoring_run_in_progress(run=run):
            raise CommandError(
                f"Rescore run {run.pk} ({run.get_kind_display().lower()}) is in progress: "
                f"{run.processed:,} / {run.total:,} leads. Nothing was started."
            )
        was = run.get_status_display().lower()
        failure = f" ({run.message})" if run.status == RunStatus.FAILED and run.message else ""
        if run.status != RunStatus.RUNNING:  # a stalled one is claimed as it is
            resumed = scoring_run_resume(run_id=run.pk, batch_size=batch_size)
            if resumed is None:
                raise CommandError(f"Rescore run {run.pk} was taken by another process.")
            run = resumed
        self.stdout.write(
            f"Continuing rescore run {run.pk} ({run.get_kind_display().lower()}, {was}{failure}) "
            f"after lead {run.last_lead_id:,}: {run.processed:,} leads done."
        )
        return run
