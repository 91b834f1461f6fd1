import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    MARKETER = "marketer", "Marketer"
    MARKETING_MANAGER = "marketing_manager", "Marketing manager"
    SALES_REP = "sales_rep", "Sales rep"
    SALES_MANAGER = "sales_manager", "Sales manager"
    ADMIN = "admin", "Admin"


MARKETING_ROLES = frozenset({Role.MARKETER, Role.MARKETING_MANAGER})
SALES_ROLES = frozenset({Role.SALES_REP, Role.SALES_MANAGER})


def default_working_timezone() -> str:
    """A new person works in the company's time zone until someone says otherwise."""
    return settings.TIME_ZONE


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Berlin).")


class User(AbstractUser):
    """A person on either team; the role decides what they may change (everyone may read)."""

    role = models.CharField(max_length=32, choices=Role.choices, blank=True, db_index=True)
    # a rep's routing profile: the most open leads they carry, where their working day is, and
    # whether they take new leads right now (holiday, sick, in training)
    capacity = models.PositiveIntegerField(default=50)
    working_timezone = models.CharField(
        max_length=64, default=default_working_timezone, validators=[validate_timezone]
    )
    available = models.BooleanField(default=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def effective_role(self) -> str:
        return Role.ADMIN if self.is_superuser else self.role

    @property
    def is_marketing(self) -> bool:
        return self.effective_role in MARKETING_ROLES

    @property
    def is_sales(self) -> bool:
        return self.effective_role in SALES_ROLES


class WorkerHeartbeat(models.Model):
    """Written by a periodic task, read by /health/ to show that a worker consumes the queue."""

    name = models.CharField(max_length=100, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {timezone.localtime(self.beat_at):%Y-%m-%d %H:%M:%S %Z}"
