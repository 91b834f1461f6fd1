"""The archive of weekly SLA reports and their deliveries (one row per report and recipient).
Imported by `sla.models`, so Django sees them."""

from django.db import models
from django.utils import timezone


class SlaReport(models.Model):
    """One ISO week's report as it was sent: the figures as data (the email is rendered from
    them), frozen when the week's report was first built."""

    week = models.CharField(max_length=8, unique=True)  # "2026-W47"
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    agreement = models.ForeignKey("sla.Agreement", on_delete=models.PROTECT, related_name="+")
    figures = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"SLA report {self.week}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (will be retried)"


class SlaReportDelivery(models.Model):
    """The report's email to one address: claimed (pending -> sending) by one conditional update
    before it is sent, so that a task that runs twice sends it once."""

    report = models.ForeignKey(SlaReport, on_delete=models.CASCADE, related_name="deliveries")
    email = models.EmailField(max_length=254)
    status = models.CharField(
        max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "email"], name="sla_report_delivery_once_per_email"
            )
        ]

    def __str__(self) -> str:
        return f"{self.report.week} to {self.email} ({self.status})"
