"""The alignment agreement: what the two teams promised each other, one signed version at a time."""

import copy
from decimal import Decimal

from django.db import models
from django.db.models import Q

from alignment.lib.business_time import DEFAULT_CALENDAR
from alignment.signoff import Approval, SignedVersion, VersionEvent


def default_calendar() -> dict:
    """A new agreement's business calendar (a fresh copy: JSON defaults must not be shared)."""
    return copy.deepcopy(DEFAULT_CALENDAR)


class CommitmentPeriod(models.TextChoices):
    WEEK = "week", "Week"
    MONTH = "month", "Month"


class OnReassign(models.TextChoices):
    RESTART = "restart", "Restart the clocks for the new rep"
    KEEP = "keep", "Keep the clocks running"


class Agreement(SignedVersion):
    """One version of the alignment agreement between marketing and sales: the MQL definition in
    force, what each side commits to, the business calendar the clocks count in, the escalation
    policy and who gets the weekly report. In force only when both managers approved it."""

    version = models.PositiveIntegerField(unique=True)
    # the MQL definition in force (a scoring model version)
    scoring_model = models.ForeignKey(
        "leads.ScoringModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # sales: first touch within N business hours of assignment, decide within M business hours,
    # and at least K follow-up attempts within D days of accepting a lead
    response_hours = models.DecimalField(max_digits=6, decimal_places=2, default=4)
    decision_hours = models.DecimalField(max_digits=6, decimal_places=2, default=16)
    followup_attempts = models.PositiveSmallIntegerField(default=3)
    followup_days = models.PositiveSmallIntegerField(default=10)

    # marketing, per week or month: MQLs delivered, their acceptance rate (percent), pipeline
    commitment_period = models.CharField(
        max_length=8, choices=CommitmentPeriod.choices, default=CommitmentPeriod.WEEK
    )
    mqls_committed = models.PositiveIntegerField(default=50)
    acceptance_rate_committed = models.DecimalField(max_digits=5, decimal_places=2, default=70)
    pipeline_committed = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    # alignment.lib.business_time.Calendar.from_json reads it
    calendar = models.JSONField(default=default_calendar)

    # escalation: warn at this share of the allowed time; on a breach tell the rep (and the sales
    # manager); reassign to the next eligible rep this many business hours after it (null: never)
    warn_share = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.750"))
    notify_manager_on_breach = models.BooleanField(default=True)
    reassign_after_hours = models.DecimalField(
        max_digits=6, decimal_places=2, null=True, blank=True
    )
    on_reassign = models.CharField(
        max_length=8, choices=OnReassign.choices, default=OnReassign.RESTART
    )

    # the weekly report: these addresses, and the marketing and sales managers when set
    report_recipients = models.JSONField(default=list, blank=True)
    report_to_managers = models.BooleanField(default=True)

    # "do we still agree on our definition of an MQL?"
    review_date = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="active"),
                name="sla_agreement_one_active",
                violation_error_message="Only one agreement can be in force.",
            ),
            models.CheckConstraint(
                condition=Q(warn_share__gt=0) & Q(warn_share__lt=1),
                name="sla_agreement_warn_share_between_0_and_1",
            ),
            models.CheckConstraint(
                condition=Q(response_hours__gt=0) & Q(decision_hours__gt=0),
                name="sla_agreement_hours_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version} {self.name}" if self.version else self.name

    @property
    def label(self) -> str:
        return f"v{self.version}"


class AgreementApproval(Approval):
    """One manager's approval of a proposed agreement: one per side, one per person."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="approvals")

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "by"], name="sla_agreement_approval_once_per_person"
            ),
            models.UniqueConstraint(
                fields=["agreement", "role"], name="sla_agreement_approval_once_per_side"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.by} approved agreement {self.agreement_id} as {self.role}"


class AgreementEvent(VersionEvent):
    """Append-only history of who did what to which version of the agreement."""

    agreement = models.ForeignKey(
        Agreement, null=True, on_delete=models.SET_NULL, related_name="events"
    )
    agreement_label = models.CharField(max_length=250)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.agreement_label}: {self.action}"


# the SLA clocks live in their own package; imported here so that Django registers them
from sla.clocks.models import ClockKind, ClockStatus, SlaClock  # noqa: E402, F401
from sla.report.models import SlaReport, SlaReportDelivery  # noqa: E402, F401
