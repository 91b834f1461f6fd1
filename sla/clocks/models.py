"""The stored SLA clocks: what `replay` derives from the events, plus what the flagging job
marked (warned, breached, notified, escalated). Imported by `sla.models`, so Django sees them."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ClockKind(models.TextChoices):
    RESPONSE = "response", "Response (first touch)"
    DECISION = "decision", "Decision (accept or reject)"


class ClockStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    WARNED = "warned", "Warned"
    MET = "met", "Met"
    BREACHED = "breached", "Breached"
    CANCELLED = "cancelled", "Cancelled"


RUNNING_STATUSES = (ClockStatus.PENDING, ClockStatus.WARNED, ClockStatus.BREACHED)


class SlaClock(models.Model):
    """One promise on one lead: respond (or decide) by `due_at`, in the agreement's business
    hours from `started_at`. Running while `ended_at` is null; a clock met late is breached."""

    # like the event log, a clock outlives its lead (a merged duplicate is deleted): no FK check
    lead = models.ForeignKey(
        "leads.Lead",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="sla_clocks",
    )
    kind = models.CharField(max_length=16, choices=ClockKind.choices)
    agreement = models.ForeignKey("sla.Agreement", on_delete=models.PROTECT, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sla_clocks",
    )
    status = models.CharField(
        max_length=16, choices=ClockStatus.choices, default=ClockStatus.PENDING
    )
    start_event = models.ForeignKey(
        "leads.LeadEvent", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    started_at = models.DateTimeField()
    warn_at = models.DateTimeField()
    due_at = models.DateTimeField()
    end_event = models.ForeignKey(
        "leads.LeadEvent",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    # met: when the touch or the decision happened (ended_at); cancelled clocks have none
    met_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    # business time from the start to the end (set when the clock ends)
    business_seconds = models.PositiveIntegerField(null=True, blank=True)
    # when the agreement reassigns a breached MQL (due time plus its further delay), if it does
    reassign_at = models.DateTimeField(null=True, blank=True)
    # what the flagging job did, each claimed once with a conditional update
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    reassigned_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["start_event", "kind"], name="sla_clock_one_per_start_and_kind"
            ),
            models.UniqueConstraint(
                fields=["lead", "kind"],
                condition=Q(ended_at__isnull=True),
                name="sla_clock_one_running_per_lead_and_kind",
            ),
            models.CheckConstraint(
                condition=Q(warn_at__lte=models.F("due_at")),
                name="sla_clock_warns_before_due",
            ),
        ]
        indexes = [
            # the flagging job: running clocks past their warning point or due time
            models.Index(
                fields=["warn_at"],
                name="sla_clock_to_warn",
                condition=Q(status="pending", ended_at__isnull=True),
            ),
            models.Index(
                fields=["due_at"],
                name="sla_clock_to_breach",
                condition=Q(status__in=["pending", "warned"], ended_at__isnull=True),
            ),
            # a rep's queue, most urgent first
            models.Index(
                fields=["owner", "due_at"],
                name="sla_clock_owner_due",
                condition=Q(ended_at__isnull=True),
            ),
            models.Index(
                fields=["reassign_at"],
                name="sla_clock_to_reassign",
                condition=Q(reassigned_at__isnull=True, ended_at__isnull=True)
                & Q(reassign_at__isnull=False),
            ),
            models.Index(fields=["lead", "started_at"], name="sla_clock_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} clock of lead {self.lead_id} ({self.status})"

    @property
    def running(self) -> bool:
        return self.ended_at is None
