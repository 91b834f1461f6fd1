from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from alignment.lib.errors import DomainError
from leads.demo import DEMO_PASSWORD, DEMO_USERNAMES, demo_seed


class Command(BaseCommand):
    help = (
        "Create a reproducible demo company: users of every role, campaigns, routing rules, and "
        "leads with touchpoints and stage history. Does nothing when the demo users and leads "
        "exist already. The demo logins (password: demo, superuser admin) exist only with DEBUG "
        "on or --demo-logins; otherwise the demo people cannot log in."
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
        parser.add_argument(
            "--no-score",
            action="store_true",
            help="Leave the new leads unscored (run `manage.py rescore` later).",
        )
        parser.add_argument(
            "--demo-logins",
            action="store_true",
            help="Let the demo people log in with the password 'demo' and make `admin` a "
            "superuser, even with DEBUG off (never on a reachable server). On by default with "
            "DEBUG.",
        )

    def handle(
        self,
        *args,
        leads,
        seed,
        touchpoints_per_lead,
        no_score,
        demo_logins,
        verbosity=1,
        **options,
    ):
        # a public password and a superuser are fine on a laptop, never on a server
        demo_logins = demo_logins or settings.DEBUG
        try:
            summary = demo_seed(
                leads=leads,
                seed=seed,
                touchpoints_per_lead=touchpoints_per_lead,
                progress=verbosity >= 1,
                demo_logins=demo_logins,
                score=not no_score,
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
        self._report_logins(demo_logins)
        if summary.unscored:
            self.stdout.write(f"Leads left unscored: {summary.unscored}")
        elif summary.scored and verbosity >= 1:
            self.stdout.write(f"Scored {summary.scored:,} leads with {summary.scored_with}.")
        if verbosity >= 2:
            stages = ", ".join(f"{stage} {count:,}" for stage, count in summary.stages.items())
            self.stdout.write(f"Stages: {stages}.")
            timings = ", ".join(f"{name} {secs:.1f} s" for name, secs in summary.timings.items())
            self.stdout.write(f"Time: {timings}.")

    def _report_logins(self, demo_logins: bool) -> None:
        if demo_logins:
            self.stdout.write(
                f"Demo logins: {', '.join(DEMO_USERNAMES)} with the password "
                f"{DEMO_PASSWORD!r}; admin is a superuser (/admin/)."
            )
        else:
            self.stdout.write(
                "No demo logins (DEBUG is off): the demo people get unusable passwords and "
                "nobody is made a superuser. Create real people with `manage.py create_user`, or "
                "pass --demo-logins on a machine nobody else can reach."
            )
