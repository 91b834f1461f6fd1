from django.core.management.base import BaseCommand, CommandError

from sla.clocks.services import clocks_rebuild, clocks_verify


class Command(BaseCommand):
    help = (
        "Recompute every SLA clock from the lead events and compare with the stored clocks. "
        "Exits with status 1 and lists the differences when they disagree; --fix rewrites the "
        "clocks of those leads from the events (and is how the demo gets its clocks)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--lead", type=int, action="append", help="only this lead (repeatable)")
        parser.add_argument("--fix", action="store_true", help="rewrite the differing clocks")
        parser.add_argument("--limit", type=int, default=50, help="differences printed (50)")

    def handle(self, *args, **options) -> None:
        checked, differences = clocks_verify(lead_ids=options["lead"])
        if not differences:
            self.stdout.write(f"{checked} leads checked: every clock is what the events say.")
            return
        for difference in differences[: options["limit"]]:
            self.stdout.write(difference.as_text())
        leads = sorted({d.lead_id for d in differences})
        if len(differences) > options["limit"]:
            self.stdout.write(
                f"{len(differences) - options['limit']} differences not listed "
                f"({len(differences)} on {len(leads)} leads)."
            )
        if options["fix"]:
            result = clocks_rebuild(lead_ids=leads)
            self.stdout.write(
                f"Rewrote the clocks of {len(leads)} leads: {len(result.started)} started, "
                f"{len(result.ended)} ended, {len(result.changed)} changed."
            )
            return
        raise CommandError(
            f"{len(differences)} differences on {len(leads)} of {checked} leads checked; "
            "run with --fix to rewrite them from the events."
        )
