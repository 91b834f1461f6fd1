"""python manage.py send_sla_report [--week 2026-W47] [--dry-run]"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from alignment.lib.errors import DomainError
from sla.report.services import last_complete_week, sla_report_send


class Command(BaseCommand):
    help = (
        "Send the weekly SLA report of one ISO week (default: the last complete week in the "
        "agreement's time zone) to each recipient who has not had it yet, and archive it. "
        "--dry-run prints the plain-text report and sends and archives nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--week", help="ISO week, e.g. 2026-W47")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, week: str | None = None, dry_run: bool = False, **options):
        try:
            week = week or last_complete_week(now=timezone.now())
            result = sla_report_send(week=week, dry_run=dry_run)
        except DomainError as error:
            raise CommandError(error.message) from None
        if dry_run:
            self.stdout.write(result.text)
            self.stdout.write(
                f"Dry run: nothing sent or archived; would go to {len(result.recipients)} "
                f"recipient(s): {', '.join(result.recipients) or 'none'}."
            )
            return
        self.stdout.write(result.as_text())
        for email, error in result.failed.items():
            self.stderr.write(f"{email}: {error}")
        if result.failed:
            raise CommandError(
                f"{len(result.failed)} email(s) failed; run the command again to retry them."
            )
