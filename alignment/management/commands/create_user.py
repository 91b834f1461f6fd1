"""python manage.py create_user USERNAME --role ROLE [--email E] [--password P] [--timezone TZ]
[--capacity N]"""

import getpass
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from alignment.models import Role, User, validate_timezone

VALID_ROLES = ", ".join(Role.values)


def _messages(error: ValidationError) -> str:
    return " ".join(error.messages)


class Command(BaseCommand):
    help = (
        "Create one person with a role (marketer, marketing_manager, sales_rep, sales_manager, "
        "admin). Role admin is also a Django superuser; other roles cannot use /admin/. Without "
        "--password the password is asked twice on the terminal."
    )
    # tests hand in their own stdin to stand for a terminal
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("username", help="the login name")
        parser.add_argument("--role", required=True, help=f"one of: {VALID_ROLES}")
        parser.add_argument("--email", default="", help="the person's email address")
        parser.add_argument(
            "--password",
            help="the password (visible in the shell history: prefer the prompt on a terminal)",
        )
        parser.add_argument(
            "--timezone",
            help="the person's working-hours time zone, e.g. Europe/Berlin (default: the "
            "company's, settings.TIME_ZONE)",
        )
        parser.add_argument(
            "--capacity",
            type=int,
            help="sales reps only: the most open leads routing gives them (default 50)",
        )

    def handle(self, *args, username, role, email, password, timezone, capacity, **options):
        username = username.strip()
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}. Valid roles: {VALID_ROLES}.")
        user = User(
            username=username,
            email=(email or "").strip().lower(),
            role=role,
            is_staff=role == Role.ADMIN,
            is_superuser=role == Role.ADMIN,
        )
        if timezone is not None:
            user.working_timezone = timezone.strip()
        self._check(user, capacity=capacity)
        if capacity is not None:
            user.capacity = capacity
        if password is None:
            password = self._ask_password(options.get("stdin", sys.stdin))
        try:
            # the similarity check compares the password with the username and email
            validate_password(password, user=user)
        except ValidationError as error:
            raise CommandError(f"Password refused: {_messages(error)}") from None
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # created by someone else since the check above
            raise CommandError(f"A user named {username!r} exists already.") from None
        admin_note = " (staff and superuser: may use /admin/)" if user.is_superuser else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Created user {username!r} with role {Role(role).label} ({role}){admin_note}."
            )
        )

    def _check(self, user: User, *, capacity: int | None) -> None:
        """Every refusal before anything is asked or written, each with a message to act on."""
        if not user.username:
            raise CommandError("The username cannot be empty.")
        max_length = User._meta.get_field("username").max_length
        if len(user.username) > max_length:
            raise CommandError(f"The username is longer than {max_length} characters.")
        try:
            User.username_validator(user.username)
        except ValidationError as error:
            raise CommandError(f"Username {user.username!r} refused: {_messages(error)}") from None
        existing = User.objects.filter(username__iexact=user.username).first()
        if existing is not None:
            raise CommandError(f"A user named {existing.username!r} exists already.")
        if user.email:
            try:
                validate_email(user.email)
            except ValidationError:
                raise CommandError(f"{user.email!r} is not a valid email address.") from None
        try:
            validate_timezone(user.working_timezone)
        except ValidationError as error:
            raise CommandError(f"--timezone: {_messages(error)}") from None
        if capacity is not None:
            if user.role != Role.SALES_REP:
                raise CommandError("--capacity is only for sales reps (--role sales_rep).")
            if capacity < 0:
                raise CommandError("--capacity cannot be negative.")

    def _ask_password(self, stdin) -> str:
        if not stdin.isatty():
            raise CommandError(
                "No terminal to ask for the password: pass --password (or run the command in a "
                "terminal)."
            )
        password = getpass.getpass("Password: ")
        if not password:
            raise CommandError("The password cannot be empty.")
        if getpass.getpass("Password (again): ") != password:
            raise CommandError("The two passwords do not match; nothing was created.")
        return password
