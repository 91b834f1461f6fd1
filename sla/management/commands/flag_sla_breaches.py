from django.core.management.base import BaseCommand

from sla.clocks.flagging import clocks_flag


class Command(BaseCommand):
    help = (
        "Mark the SLA clocks past their warning point or due time, notify once, and reassign "
        "breached MQLs where the agreement says so (what the beat job does every minute)."
    )

    def handle(self, *args, **options) -> None:
        result = clocks_flag()
        self.stdout.write(result.as_text())
