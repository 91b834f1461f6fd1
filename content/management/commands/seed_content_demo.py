from django.core.management.base import BaseCommand, CommandError

from alignment.lib.errors import DomainError
from content.demo import content_demo_seed


class Command(BaseCommand):
    help = (
        "Fill the content library and the feedback loops of the demo company (run after "
        "seed_demo): assets, shares, objections, lead flags, win and loss stories, content "
        "requests, all through their services. Does nothing when the library has assets."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42, help="The same seed, the same data.")

    def handle(self, *args, seed, **options):
        try:
            summary = content_demo_seed(seed=seed)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if summary is None:
            self.stdout.write("The content library has assets already: nothing to do.")
            return
        self.stdout.write(
            f"Content demo: {summary.assets} assets, {summary.shares} shares, "
            f"{summary.objections} objections, {summary.flags} lead flags, "
            f"{summary.stories} stories, {summary.requests} content requests."
        )
