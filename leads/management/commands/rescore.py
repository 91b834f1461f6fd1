import time

from django.core.management.base import BaseCommand, CommandError

from alignment.lib.errors import DomainError
from leads.scoring.models import RunKind, RunStatus, ScoringRun
from leads.scoring.services import DEFAULT_BATCH_SIZE, scoring_run_create, scoring_run_execute


class Command(BaseCommand):
    help = (
        "Rescore every lead with the active scoring model, in batches by id (set-based SQL on "
        "PostgreSQL). Stages are never changed: MQL crossings happen only on events."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"leads per batch and transaction (default {DEFAULT_BATCH_SIZE})",
        )

    def handle(self, *args, batch_size: int, **options):
        try:
            run = scoring_run_create(kind=RunKind.MANUAL, batch_size=batch_size)
        except DomainError as error:
            raise CommandError(error.message) from None
        started = time.monotonic()
        shown = {"percent": -10}

        def progress(current: ScoringRun) -> None:
            percent = current.progress_percent
            if percent >= shown["percent"] + 10 or current.status != RunStatus.RUNNING:
                shown["percent"] = percent
                self.stdout.write(f"  {percent:3d}%  {current.processed:,} / {current.total:,}")

        self.stdout.write(f"Rescoring with {run.model}, batches of {batch_size:,} leads.")
        run = scoring_run_execute(run_id=run.pk, progress=progress)
        elapsed = time.monotonic() - started
        if run is None or run.status != RunStatus.DONE:
            raise CommandError(run.message if run else "The run was taken by another process.")
        self.stdout.write(
            self.style.SUCCESS(f"Done: {run.processed:,} leads rescored in {elapsed:.1f} s.")
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
