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


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    # no email was due: asked for none, no address, or the person is inactive
    SKIPPED = "skipped", "Not sent (none due)"
    # given up: refused by the mail server, or still failing after a day
    FAILED = "failed", "Failed"


class Notification(models.Model):
    """One message to one person (the bell, the page, and its email), at most once per key."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    # what it is about, a short dotted slug: sla.warned, sla.breached, sla.reassigned, ...
    kind = models.CharField(max_length=64)
    # the dedupe key, e.g. "sla.breached:clock:123:user:45": the same key never notifies twice
    key = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    # a relative link to the thing it is about (the lead, the clock)
    url = models.CharField(max_length=500, blank=True)
    lead = models.ForeignKey(
        "leads.Lead",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    # the email after commit (alignment.notifications): a sender claims the row, sends, marks it
    email_status = models.CharField(
        max_length=16, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    email_claimed_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # what makes "exactly once" hold when two workers notify at the same moment
            models.UniqueConstraint(fields=["user", "key"], name="notification_once_per_user_key")
        ]
        indexes = [
            # the bell: a person's unread count on every page
            models.Index(fields=["user", "read_at"], name="notification_bell"),
            # the page: a person's newest first
            models.Index(fields=["user", "-created_at"], name="notification_page"),
            # the sender's pass every minute reads only the few still due
            models.Index(
                fields=["created_at"],
                condition=models.Q(email_status="pending"),
                name="notification_email_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} → {self.user_id}"


API_SCOPES = (
    "leads:read",
    "leads:write",
    "touchpoints:write",
    "pipeline:write",
    "scoring:read",
    "scoring:approve",
    "sla:read",
    "kpis:read",
    "events:read",
    "webhooks:manage",
    # the content library and content requests (content/)
    "content:read",
    "content:write",
    # sales' feedback to marketing: objections, lead flags, win and loss stories (content/)
    "feedback:read",
    "feedback:write",
)


class ApiKey(models.Model):
    """A key a CRM sends as `Authorization: Bearer KEY`; only its SHA-256 is stored."""

    name = models.CharField(max_length=100)
    # the first characters of the key, shown in lists and used to find the row before comparing
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    # a key acting as a person is held to that person's role as well as to its scopes
    as_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys_acting",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="api_keys_created",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def user_for_permissions(self):
        """The person whose role limits what this key may do, or None for a key of its own."""
        return self.as_user


class IdempotentRequest(models.Model):
    """A POST sent with an `Idempotency-Key` header and the answer it got, kept 24 hours so that
    a retry gets the first answer instead of doing the work twice."""

    # who sent it ("key:12" or "user:3"): two clients may use the same key string
    caller = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body.")
    # null while the first request is still running
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotent_request_unique")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"


from alignment.webhooks.models import (  # noqa: E402,F401
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
