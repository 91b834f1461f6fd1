"""manage.py kpis_rebuild [--batch N]: rewrite the KPI rollups (the stage stays) from the lead
event log. Safe to run at any time, also while the app is in use: each batch of lead ids is
rewritten in one transaction. `make run` runs it after seeding the demo (whose history is written
without reactions), and beat runs it nightly as a safety net (settings.CELERY_BEAT_SCHEDULE)."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from kpis.rollups.services import REBUILD_BATCH, stays_rebuild


class Command(BaseCommand):
    help = "Rewrite the KPI rollups (stage stays) from the lead event log."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch", type=int, default=REBUILD_BATCH, help="lead ids per transaction"
        )

    def handle(self, *args, batch, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        started = time.perf_counter()
        rows = stays_rebuild(batch=batch)
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # the visibility map, so that the figures are read from the covering indexes alone
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE) kpis_stagestay")
        self.stdout.write(f"Rebuilt {rows:,} stage stays in {time.perf_counter() - started:.1f} s.")
