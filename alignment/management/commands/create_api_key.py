"""python manage.py create_api_key NAME --scope leads:read [--scope ...] [--as-user USERNAME]"""

from django.core.management.base import BaseCommand, CommandError

from alignment.api_keys import api_key_create
from alignment.lib.errors import DomainError
from alignment.models import API_SCOPES, User


class Command(BaseCommand):
    help = (
        "Create an API key with the given scopes and print it once, alone on the last line "
        "(only its hash is stored). With --as-user the key is also held to that person's role."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="who uses the key, e.g. 'HubSpot sync'")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            default=[],
            help=f"repeat for each scope: {', '.join(API_SCOPES)}",
        )
        parser.add_argument("--as-user", dest="as_user", help="the username the key acts as")

    def handle(self, *args, name, scopes, as_user, **options):
        user = None
        if as_user:
            user = User.objects.filter(username=as_user).first()
            if user is None:
                raise CommandError(f"No user named {as_user!r}; nothing was created.")
        try:
            key, raw = api_key_create(name=name, scopes=scopes, as_user=user)
        except DomainError as e:
            raise CommandError(f"{e.message} Nothing was created.") from None
        acting = f", acting as {user.username}" if user else ""
        self.stdout.write(
            f"Created API key {key.name!r} (prefix {key.prefix}) with scopes "
            f"{', '.join(key.scopes)}{acting}. It is shown once; only its hash is stored:"
        )
        self.stdout.write(raw)
