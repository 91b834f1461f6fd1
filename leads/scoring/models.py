"""Scoring tables. Imported at the bottom of leads/models.py so that the app registry sees them."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from alignment.signoff import Approval, SignedVersion, VersionAction, VersionEvent, VersionStatus

# the life cycle and the history of a version are the sign-off's (alignment.signoff)
ModelStatus = VersionStatus
ModelAction = VersionAction


class ModelOrigin(models.TextChoices):
    DEFAULT = "default", "Shipped default"
    MANUAL = "manual", "Written by hand"
    TUNING = "tuning", "Fine-tuned on outcomes"


class ScoringModel(SignedVersion):
    """One version of the shared scoring model. Editable only as a draft; once proposed it is
    frozen, so that what the two managers approve is exactly what becomes active."""

    origin = models.CharField(
        max_length=16, choices=ModelOrigin.choices, default=ModelOrigin.MANUAL
    )
    description = models.TextField(blank=True)

    # see leads.scoring.rules for the shape of each rule
    fit_rules = models.JSONField(default=list, blank=True)
    engagement_rules = models.JSONField(default=list, blank=True)
    # {"group name": cap}; a group without a cap only labels its rules
    group_caps = models.JSONField(default=dict, blank=True)
    half_life_days = models.FloatField(default=30)
    # the MQL definition: total score >= mql_total and fit >= mql_fit
    mql_total = models.IntegerField(default=100)
    mql_fit = models.IntegerField(default=40)
    # grade A when fit >= grade_a, B when >= grade_b, C when >= grade_c, otherwise D
    grade_a = models.IntegerField(default=60)
    grade_b = models.IntegerField(default=40)
    grade_c = models.IntegerField(default=20)

    # free report attached by whoever produced the version (fine-tuning: AUC, lift, backtest)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="active"),
                name="scoring_model_one_active",
                violation_error_message="Only one scoring model can be active.",
            ),
            models.CheckConstraint(
                condition=Q(half_life_days__gt=0), name="scoring_model_half_life_positive"
            ),
            models.CheckConstraint(
                condition=Q(grade_a__gte=models.F("grade_b")) & Q(grade_b__gte=models.F("grade_c")),
                name="scoring_model_grades_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.pk} {self.name}" if self.pk else self.name

    @property
    def label(self) -> str:
        return f"v{self.pk}"


class ScoringApproval(Approval):
    """One manager's approval of a proposed version: one per side, one per person."""

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="approvals")

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "by"], name="scoring_approval_once_per_person"
            ),
            models.UniqueConstraint(
                fields=["model", "role"], name="scoring_approval_once_per_side"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.by} approved v{self.model_id} as {self.role}"


class ScoringModelEvent(VersionEvent):
    """Append-only audit of who did what to which version."""

    model = models.ForeignKey(
        ScoringModel, null=True, on_delete=models.SET_NULL, related_name="events"
    )
    model_label = models.CharField(max_length=250)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.model_label}: {self.action}"


class RunKind(models.TextChoices):
    ACTIVATION = "activation", "After activation"
    MANUAL = "manual", "Manual"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded by a newer version"


class ScoringRun(models.Model):
    """One full rescore, batched by lead id; resumable from `last_lead_id`, progress polled."""

    model = models.ForeignKey(ScoringModel, on_delete=models.PROTECT, related_name="runs")
    kind = models.CharField(max_length=16, choices=RunKind.choices, default=RunKind.MANUAL)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    batch_size = models.PositiveIntegerField(default=5000)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    last_lead_id = models.BigIntegerField(default=0)
    snapshots = models.PositiveIntegerField(default=0)
    # leads in new/nurturing/recycled that meet the MQL definition after the run (not moved)
    qualified_not_moved = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Rescore {self.pk} with v{self.model_id} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if not self.total:
            return 100 if self.status == RunStatus.DONE else 0
        return min(100, int(100 * self.processed / self.total))


class SnapshotKind(models.TextChoices):
    MQL = "mql", "Became MQL"
    MODEL_CHANGE = "model_change", "Scoring model changed"


class ScoreSnapshot(models.Model):
    """A lead's score kept at a moment that matters: when it became an MQL (with the full
    explanation, so a rep sees why it was routed even after the model changed) and when a new
    model version rescored it (before and after)."""

    # the (lead, at) index serves lookups by lead
    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="score_snapshots", db_index=False
    )
    model = models.ForeignKey(ScoringModel, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=SnapshotKind.choices)
    at = models.DateTimeField(default=timezone.now)
    fit = models.IntegerField()
    engagement = models.FloatField()
    total = models.FloatField()
    grade = models.CharField(max_length=1, blank=True)
    # model changes: the stored score before the rescore, and as of when it was computed
    # no constraint and no index: written a million at a time, never queried by
    previous_model = models.ForeignKey(
        ScoringModel,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    previous_fit = models.IntegerField(null=True, blank=True)
    previous_total = models.FloatField(null=True, blank=True)
    previous_grade = models.CharField(max_length=1, blank=True)
    previous_at = models.DateTimeField(null=True, blank=True)
    # MQL snapshots: lead_score_explain() at that moment
    explanation = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["lead", "at"], name="scoresnapshot_lead_at")]

    def __str__(self) -> str:
        return f"lead {self.lead_id} {self.kind} {self.total:.1f} ({self.grade})"


class TuningState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PROPOSED = "proposed", "Proposed a version"
    UNCHANGED = "unchanged", "Nothing new"
    NOT_PROPOSED = "not_proposed", "Learned, not proposed"
    FAILED = "failed", "Failed"


class TuningRun(models.Model):
    """One fine-tuning run as the tuning page shows it: queued by a click, claimed by the process
    that runs it (at most one runs at a time), and what it came to. In the database, so that the
    web process sees what a separate worker wrote."""

    state = models.CharField(max_length=16, choices=TuningState.choices, default=TuningState.QUEUED)
    message = models.TextField(blank=True)
    # a person's name or a named system ("tuning")
    by = models.CharField(max_length=150, blank=True)
    # the version a run proposed
    model = models.ForeignKey(
        ScoringModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.TextField(blank=True)
    # the run's options (outcome, holdout, seed, exclusions) and any other detail recorded
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # the lock: a second claim fails on this index, whichever process makes it
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(state__in=["queued", "running"]),
                name="tuning_run_one_queued_one_running",
                violation_error_message="One tuning run may wait and one may run at a time.",
            ),
        ]

    def __str__(self) -> str:
        return f"Tuning run {self.pk} ({self.state})"

    @property
    def at(self):
        """When it last changed state."""
        return self.finished_at or self.started_at or self.created_at
