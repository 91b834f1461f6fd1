"""Webhook subscriptions, the deliveries the outbox fans out to them, and every attempt's log."""

from django.db import models
from django.utils import timezone

# an endpoint subscribed to this "type" receives every event type
ALL_EVENTS = "*"
TEST_EVENT_TYPE = "webhook.test"


class WebhookEndpoint(models.Model):
    """A URL that receives signed POSTs for the event types it subscribes to."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # EventType values, or ["*"] for every type
    event_types = models.JSONField(default=list)
    # "whsec_" + base64 of 32 random bytes (Standard Webhooks); shown once, kept to sign with
    secret = models.CharField(max_length=100)
    # after a rotation the old secret signs too, until previous_secret_until, so that receivers
    # can switch without losing a message
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # deliveries given up in a row (any success resets it); at WEBHOOKS_DISABLE_AFTER the
    # endpoint is disabled
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url

    def subscribes_to(self, event_type: str) -> bool:
        return ALL_EVENTS in self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One message (an event, or a test) to one endpoint, attempted until it succeeds or the
    retry schedule is exhausted; its body is fixed when it is created, so every attempt and a
    resend send the same signed bytes under the same `webhook-id`."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # null for a test message; no database constraint, as for the event log itself
    event = models.ForeignKey(
        "leads.LeadEvent",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    msg_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=40)
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    # attempts in the current round (a resend starts a new round); the log keeps them all
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # a sender claims the row before it sends (a conditional update); stale after a while
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # what makes "each event to each endpoint exactly once" hold when a reaction reruns
            models.UniqueConstraint(
                fields=["endpoint", "event"],
                condition=models.Q(event__isnull=False),
                name="webhook_delivery_once_per_event",
            )
        ]
        indexes = [
            # the retry sweep reads only the few still due
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            ),
            # an endpoint's log, newest first
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.msg_id} → {self.endpoint_id} ({self.status})"

    @property
    def is_test(self) -> bool:
        return self.event_type == TEST_EVENT_TYPE


class AttemptTrigger(models.TextChoices):
    AUTO = "auto", "Automatic"
    RESEND = "resend", "Resend"
    TEST = "test", "Test"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: what came back, how long it took, or why it failed."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    attempted_at = models.DateTimeField()
    trigger = models.CharField(
        max_length=16, choices=AttemptTrigger.choices, default=AttemptTrigger.AUTO
    )
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # at most 1 KB of what the receiver answered
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["delivery", "-id"], name="webhook_attempt_log")]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S} → {self.status_code}"
