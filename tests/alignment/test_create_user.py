import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from alignment.models import Role, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "violet-harbour-1729"


class FakeStdin(io.StringIO):
    def __init__(self, *, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def create_user(*args, **options) -> str:
    out = io.StringIO()
    call_command("create_user", *args, stdout=out, **options)
    return out.getvalue()


def test_a_rep_is_created_with_role_email_and_a_working_password():
    out = create_user(
        "jane",
        role="sales_rep",
        email="Jane.Doe@Example.com",
        password=GOOD_PASSWORD,
        timezone="Europe/Berlin",
        capacity=20,
    )

    user = authenticate(username="jane", password=GOOD_PASSWORD)
    assert user is not None
    assert user.role == Role.SALES_REP
    assert user.email == "jane.doe@example.com"
    assert user.working_timezone == "Europe/Berlin"
    assert user.capacity == 20
    assert not user.is_staff and not user.is_superuser
    assert out.strip() == "Created user 'jane' with role Sales rep (sales_rep)."


def test_role_admin_is_staff_and_superuser():
    out = create_user("boss", role="admin", password=GOOD_PASSWORD)

    user = User.objects.get(username="boss")
    assert user.is_staff and user.is_superuser
    assert user.effective_role == Role.ADMIN
    assert "with role Admin (admin)" in out and "superuser" in out


@pytest.mark.parametrize("role", [r for r in Role.values if r != Role.ADMIN])
def test_other_roles_are_not_staff(role):
    create_user(f"user-{role}", role=role, password=GOOD_PASSWORD)

    user = User.objects.get(username=f"user-{role}")
    assert user.role == role
    assert not user.is_staff and not user.is_superuser


def test_an_unknown_role_lists_the_valid_ones():
    with pytest.raises(CommandError) as error:
        create_user("jane", role="ceo", password=GOOD_PASSWORD)

    assert "Unknown role 'ceo'" in str(error.value)
    for role in Role.values:
        assert role in str(error.value)
    assert not User.objects.exists()


def test_an_existing_username_is_refused_whatever_its_case():
    UserFactory(username="jane")

    with pytest.raises(CommandError, match="A user named 'jane' exists already"):
        create_user("Jane", role="marketer", password=GOOD_PASSWORD)

    assert User.objects.count() == 1


def test_an_invalid_email_is_refused():
    with pytest.raises(CommandError, match="'not-an-email' is not a valid email address"):
        create_user("jane", role="marketer", email="not-an-email", password=GOOD_PASSWORD)

    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short1", "too short"), ("password123", "too common"), ("jane-smith", "too similar")],
)
def test_a_password_the_validators_refuse_creates_nothing(password, reason):
    with pytest.raises(CommandError) as error:
        create_user("jane-smith", role="marketer", password=password)

    assert str(error.value).startswith("Password refused:")
    assert reason in str(error.value)
    assert not User.objects.exists()


def test_an_unknown_timezone_and_capacity_for_a_non_rep_are_refused():
    with pytest.raises(CommandError, match="not a known time zone"):
        create_user("jane", role="sales_rep", password=GOOD_PASSWORD, timezone="Mars/Olympus")
    with pytest.raises(CommandError, match="only for sales reps"):
        create_user("jane", role="marketer", password=GOOD_PASSWORD, capacity=10)
    with pytest.raises(CommandError, match="cannot be negative"):
        create_user("jane", role="sales_rep", password=GOOD_PASSWORD, capacity=-1)

    assert not User.objects.exists()


def test_without_password_and_without_a_terminal_it_says_to_pass_one(monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": pytest.fail("must not prompt"))

    with pytest.raises(CommandError, match="pass --password"):
        create_user("jane", role="marketer", stdin=FakeStdin(terminal=False))

    assert not User.objects.exists()


def test_on_a_terminal_the_password_is_asked_twice(monkeypatch):
    prompts = []

    def answer(prompt=""):
        prompts.append(prompt)
        return GOOD_PASSWORD

    monkeypatch.setattr("getpass.getpass", answer)

    create_user("jane", role="marketer", stdin=FakeStdin(terminal=True))

    assert len(prompts) == 2
    assert authenticate(username="jane", password=GOOD_PASSWORD) is not None


def test_two_different_answers_at_the_prompt_create_nothing(monkeypatch):
    answers = iter([GOOD_PASSWORD, GOOD_PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))

    with pytest.raises(CommandError, match="do not match"):
        create_user("jane", role="marketer", stdin=FakeStdin(terminal=True))

    assert not User.objects.exists()


def test_the_command_line_parser_asks_for_a_role():
    with pytest.raises(CommandError, match="--role"):
        create_user("jane", password=GOOD_PASSWORD)
