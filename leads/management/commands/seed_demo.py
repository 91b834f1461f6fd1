from django.core.management.base import BaseCommand, CommandError

from alignment.lib.errors import DomainError
from leads.demo import demo_seed


class Command(BaseCommand):
    help = (
        "Create a reproducible demo company: users of every role (password: demo), campaigns, "
        "routing rules, and leads with touchpoints and stage history. Does nothing when the demo "
        "users and leads exist already."
    )

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=3000, help="Leads to create (3000).")
        parser.add_argument(
            "--seed", type=int, default=42, help="The same seed gives the same data (42)."
        )
        parser.add_argument(
            "--touchpoints-per-lead",
            type=float,
            default=10.0,
            help="Average marketing touchpoints per lead (10).",
        )

    def handle(self, *args, leads, seed, touchpoints_per_lead, verbosity=1, **options):
        try:
            summary = demo_seed(
                leads=leads,
                seed=seed,
                touchpoints_per_lead=touchpoints_per_lead,
                progress=verbosity >= 1,
            )
        except DomainError as error:
            raise CommandError(error.message) from error
        if not summary.created:
            self.stdout.write(
                f"Demo data already present ({summary.existing_leads} leads); nothing to do."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {summary.leads:,} leads, {summary.touchpoints:,} touchpoints, "
                f"{summary.stage_changes:,} stage changes and {summary.assignments:,} assignments "
                f"in {summary.seconds:.1f} s (seed {summary.seed})."
            )
        )
        if verbosity >= 2:
            stages = ", ".join(f"{stage} {count:,}" for stage, count in summary.stages.items())
            self.stdout.write(f"Stages: {stages}.")
            timings = ", ".join(f"{name} {secs:.1f} s" for name, secs in summary.timings.items())
            self.stdout.write(f"Time: {timings}.")
