import re

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Stage(models.TextChoices):
    NEW = "new", "New"
    NURTURING = "nurturing", "Nurturing"
    MQL = "mql", "MQL"
    SAL = "sal", "SAL (accepted)"
    SQL = "sql", "SQL"
    OPPORTUNITY = "opportunity", "Opportunity"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    REJECTED = "rejected", "Rejected"
    RECYCLED = "recycled", "Recycled"


# The lead's plain text fields (person, company, UTM): what intake sets, merge fills, import maps,
# and routing and scoring rules may test. One list, used by all of them.
LEAD_TEXT_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "phone",
    "company",
    "industry",
    "country",
    "website",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)

# stages in which a lead sits in a rep's queue and counts against the rep's capacity
OPEN_SALES_STAGES = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY)


def normalise_key(value: str) -> str:
    """`Google Ads`, `google ads ` and `GOOGLE-ADS` are one key: `google_ads`."""
    return re.sub(r"[^0-9a-z]+", "_", value.strip().lower()).strip("_")


def normalise_email(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value or None


class Source(models.Model):
    """Where leads come from (google, linkedin, trade show...). `key` makes spellings one source."""

    name = models.CharField(max_length=100)
    key = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    PAID_SEARCH = "paid_search", "Paid search"
    PAID_SOCIAL = "paid_social", "Paid social"
    ORGANIC_SOCIAL = "organic_social", "Organic social"
    SEO = "seo", "SEO / organic"
    CONTENT = "content", "Content"
    WEBINAR = "webinar", "Webinar"
    EVENT = "event", "Event / trade show"
    REFERRAL = "referral", "Referral"
    PARTNER = "partner", "Partner"
    OUTBOUND = "outbound", "Outbound / telemarketing"
    DIRECT_MAIL = "direct_mail", "Direct mail"
    OTHER = "other", "Other"


class Campaign(models.Model):
    """A campaign is planned together: it has a marketing owner and a sales owner."""

    name = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=32, choices=Channel.choices, default=Channel.OTHER)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    budget = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    marketing_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sales_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # incoming leads and touchpoints whose UTM values match these keys belong to this campaign
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_on", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True)
                | Q(starts_on__isnull=True)
                | Q(ends_on__gte=models.F("starts_on")),
                name="campaign_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Lead(models.Model):
    """The one lead record both teams share."""

    email = models.EmailField(max_length=254, null=True, blank=True, unique=True)
    external_id = models.CharField(max_length=128, null=True, blank=True, unique=True)

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    company = models.CharField(max_length=200, blank=True)
    company_size = models.PositiveIntegerField(null=True, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True)
    website = models.CharField(max_length=200, blank=True)

    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        db_index=False,  # lead_owner_stage (owner, stage) serves every lookup by owner
    )
    assigned_at = models.DateTimeField(null=True, blank=True)

    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NEW)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    # the latest time the lead reached each stage (the full record is StageChange)
    nurturing_at = models.DateTimeField(null=True, blank=True)
    mql_at = models.DateTimeField(null=True, blank=True)
    sal_at = models.DateTimeField(null=True, blank=True)
    sql_at = models.DateTimeField(null=True, blank=True)
    opportunity_at = models.DateTimeField(null=True, blank=True)
    won_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    recycled_at = models.DateTimeField(null=True, blank=True)
    first_mql_at = models.DateTimeField(null=True, blank=True)
    mql_count = models.PositiveIntegerField(default=0)
    # first sales touch after the current MQL: speed-to-lead = first_sales_touch_at - mql_at
    first_sales_touch_at = models.DateTimeField(null=True, blank=True)
    deal_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    last_reason = models.ForeignKey(
        "Reason", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # every imported column without a field of its own; numbers stay numbers
    attributes = models.JSONField(default=dict, blank=True)

    # filled by the scoring model
    fit_score = models.IntegerField(default=0)
    engagement_score = models.FloatField(default=0)
    score = models.FloatField(default=0)
    grade = models.CharField(max_length=1, blank=True)
    # engagement_score and score are as of engagement_anchor_at; the exact value at any later
    # moment comes from engagement_sums (decayed sum per capped group at the anchor), see
    # leads.scoring.engagement. No constraint: rescoring a million rows must not check it per row.
    scored_with = models.ForeignKey(
        "leads.ScoringModel",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    engagement_anchor_at = models.DateTimeField(null=True, blank=True)
    engagement_sums = models.JSONField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(email__isnull=False) | Q(external_id__isnull=False),
                name="lead_has_email_or_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["stage", "owner"], name="lead_stage_owner"),
            models.Index(fields=["owner", "stage"], name="lead_owner_stage"),
            models.Index(fields=["created_at"], name="lead_created"),
            models.Index(fields=["mql_at"], name="lead_mql_at"),
        ]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args, **kwargs):
        self.email = normalise_email(self.email)
        self.external_id = (self.external_id or "").strip() or None
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.external_id or f"Lead {self.pk}"


class ReasonKind(models.TextChoices):
    REJECT = "reject", "Rejection of an MQL"
    RECYCLE = "recycle", "Recycle to marketing"
    LOST = "lost", "Opportunity lost"
    WON = "won", "Why we won"


class Reason(models.Model):
    """A reason code for reject, recycle and lost, and why a deal was won (the win story's
    codes). Data an admin can extend."""

    kind = models.CharField(max_length=16, choices=ReasonKind.choices)
    code = models.SlugField(max_length=50)
    label = models.CharField(max_length=100)
    # a rejection for this reason sends the lead back to marketing instead of closing it
    recycles = models.BooleanField(default=False)
    requires_note = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["kind", "position", "label"]
        constraints = [models.UniqueConstraint(fields=["kind", "code"], name="reason_kind_code")]

    def __str__(self) -> str:
        return self.label


class StageChange(models.Model):
    """Append-only history of every lifecycle move."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_system = models.CharField(max_length=50, blank=True)
    reason = models.ForeignKey(Reason, null=True, blank=True, on_delete=models.PROTECT)
    note = models.TextField(blank=True)
    deal_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["lead", "at"], name="stagechange_lead_at"),
            models.Index(fields=["to_stage", "at"], name="stagechange_to_at"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.from_stage} -> {self.to_stage}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Stage history is append-only.")
        super().save(*args, **kwargs)


class TouchpointKind(models.TextChoices):
    WEB_VISIT = "web_visit", "Web visit"
    EMAIL_OPEN = "email_open", "Email open"
    EMAIL_CLICK = "email_click", "Email click"
    FORM_SUBMIT = "form_submit", "Form submit"
    CONTENT_DOWNLOAD = "content_download", "Content download"
    WEBINAR_ATTENDED = "webinar_attended", "Webinar attended"
    EVENT_ATTENDED = "event_attended", "Event attended"
    DEMO_REQUEST = "demo_request", "Demo request"
    CALL = "call", "Call"
    SALES_EMAIL = "sales_email", "Sales email"
    MEETING = "meeting", "Meeting"
    NOTE = "note", "Note"
    CONTENT_SHARED = "content_shared", "Content shared"


SALES_TOUCHPOINT_KINDS = frozenset(
    {
        TouchpointKind.CALL,
        TouchpointKind.SALES_EMAIL,
        TouchpointKind.MEETING,
        TouchpointKind.NOTE,
        TouchpointKind.CONTENT_SHARED,
    }
)
# the kinds a person or a CRM logs as such; content_shared is written only by sharing an asset
# (content.sharing.asset_share), which links the touchpoint to the asset it shared
LOGGED_TOUCHPOINT_KINDS = tuple(k for k in TouchpointKind if k != TouchpointKind.CONTENT_SHARED)
SHARE_ONLY_MESSAGE = (
    "content_shared is recorded by sharing an asset of the content library (on the lead page, or "
    "POST /api/v1/assets/{id}/share/), so that it is linked to the asset."
)
# a note is written by sales but is not a touch of the lead: it does not stop the SLA clock; nor
# does sharing content (one click that records a link sent, not a conversation)
FIRST_TOUCH_KINDS = frozenset(
    {TouchpointKind.CALL, TouchpointKind.SALES_EMAIL, TouchpointKind.MEETING}
)


class Touchpoint(models.Model):
    """One interaction with a lead."""

    # no index of its own: touchpoint_lead_time (lead, occurred_at) serves the rescore as fast
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="touchpoints", db_index=False
    )
    kind = models.CharField(max_length=32, choices=TouchpointKind.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # one lead's timeline
            models.Index(fields=["lead", "occurred_at"], name="touchpoint_lead_time"),
            # time ranges across millions (reports, rescoring windows)
            models.Index(fields=["occurred_at"], name="touchpoint_time"),
            models.Index(fields=["campaign", "occurred_at"], name="touchpoint_campaign_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by lead {self.lead_id}"


class AssignmentRule(models.Model):
    """Ordered routing rule: the first active rule whose conditions match chooses the pool."""

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    # [{"field": "country", "op": "in", "value": ["DE", "AT"]}, ...]; all must match; [] matches all
    conditions = models.JSONField(default=list, blank=True)
    # stride scheduling's clock: the pass value of the last rep this rule chose
    virtual_time = models.FloatField(default=0)
    reps = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="PoolMember", related_name="assignment_rules"
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class PoolMember(models.Model):
    rule = models.ForeignKey(AssignmentRule, on_delete=models.CASCADE, related_name="members")
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    weight = models.PositiveSmallIntegerField(default=1)
    # grows by 1/weight for every lead the rep gets from this rule; lowest eligible pass is next
    pass_value = models.FloatField(default=0)
    assigned_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "rep"], name="pool_rule_rep")]

    def __str__(self) -> str:
        return f"{self.rep} in {self.rule} (weight {self.weight})"


class Assignment(models.Model):
    """Append-only record of who got a lead, and which rule or person decided it."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="assignments")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule = models.ForeignKey(AssignmentRule, null=True, blank=True, on_delete=models.SET_NULL)
    rule_name = models.CharField(max_length=100, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_system = models.CharField(max_length=50, blank=True)
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["lead", "at"], name="assignment_lead_at")]

    def __str__(self) -> str:
        return f"lead {self.lead_id} -> {self.rep_id}"


class MergeRecord(models.Model):
    """What a merge removed, kept whole so that nothing is lost."""

    survivor = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="merges")
    merged_lead_id = models.BigIntegerField()
    snapshot = models.JSONField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"lead {self.merged_lead_id} merged into {self.survivor_id}"


class Announcement(models.Model):
    """A won customer, announced to marketing with what brought it in (once per lead)."""

    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, related_name="announcement")
    title = models.CharField(max_length=300)
    body = models.TextField()
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One CSV import, run in the request, a command or a Celery job; its progress is polled."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    filename = models.CharField(max_length=255)
    mapping = models.JSONField(default=dict, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    encoding = models.CharField(max_length=32, blank=True)
    dry_run = models.BooleanField(default=False)
    atomic = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # [{"row": 12, "column": "email", "reason": "..."}], the first few hundred
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # written after every batch; a running job whose heartbeat is old lost its worker
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.filename}"

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, int(100 * self.processed_rows / self.total_rows))


class EventType(models.TextChoices):
    LEAD_CREATED = "lead.created", "Lead created"
    LEAD_UPDATED = "lead.updated", "Lead updated"
    LEAD_STAGE_CHANGED = "lead.stage_changed", "Stage changed"
    LEAD_MQL = "lead.mql", "Became an MQL"
    LEAD_ACCEPTED = "lead.accepted", "Accepted by sales"
    LEAD_REJECTED = "lead.rejected", "Rejected by sales"
    LEAD_RECYCLED = "lead.recycled", "Recycled to marketing"
    LEAD_WON = "lead.won", "Won"
    LEAD_LOST = "lead.lost", "Lost"
    LEAD_ASSIGNED = "lead.assigned", "Assigned"
    LEAD_MERGED = "lead.merged", "Duplicate merged"
    TOUCHPOINT_RECORDED = "touchpoint.recorded", "Touchpoint recorded"
    SCORE_CHANGED = "score.changed", "Grade or MQL eligibility changed"
    SCORING_ACTIVATED = "scoring.activated", "Scoring model activated"
    # the feedback loops (content/): each names its lead, so a lead's webhooks carry them
    CONTENT_SHARED = "content.shared", "Content shared with a lead"
    CONTENT_ENGAGED = "content.engaged", "Lead engaged with content"
    OBJECTION_LOGGED = "objection.logged", "Question or objection logged"
    OBJECTION_ANSWERED = "objection.answered", "Objection linked to an answering asset"
    FLAG_RAISED = "flag.raised", "Lead flagged for marketing"
    FLAG_COMMENTED = "flag.commented", "Comment on a lead flag"
    FLAG_RESOLVED = "flag.resolved", "Lead flag resolved"
    STORY_RECORDED = "story.recorded", "Win or loss story recorded"
    # the library's own facts, on no lead
    ASSET_CREATED = "asset.created", "Content asset added"
    ASSET_UPDATED = "asset.updated", "Content asset changed"
    CONTENT_REQUESTED = "content_request.created", "Content requested by sales"
    CONTENT_REQUEST_UPDATED = "content_request.updated", "Content request planned, done or declined"


class LeadEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The lead event log is append-only: events are never updated.")

    def delete(self):
        raise TypeError("The lead event log is append-only: events are never deleted.")


class LeadEvent(models.Model):
    """One fact in the append-only log of everything that happened to a lead (or, with no lead,
    to the pipeline: a scoring model activated). Written in the transaction of the change."""

    # no database constraint and no cascade: the log outlives a merged duplicate, whose events
    # keep its id (the survivor's lead.merged event names it)
    lead = models.ForeignKey(
        Lead,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="events",
    )
    # an EventType value, or another app's own type (no choices: the log is open to new types)
    type = models.CharField(max_length=40)
    occurred_at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    # the named system that acted (routing, scoring, import, seed, ...), or the door a person
    # came through (admin)
    system = models.CharField(max_length=50, blank=True)
    payload = models.JSONField(default=dict, blank=True)

    objects = LeadEventQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            # one lead's timeline
            models.Index(fields=["lead", "occurred_at", "id"], name="leadevent_lead_time"),
            # time ranges by type across millions (KPIs by cohort, the event feed)
            models.Index(fields=["type", "occurred_at"], name="leadevent_type_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} lead {self.lead_id} at {self.occurred_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The lead event log is append-only: events are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The lead event log is append-only: events are never deleted.")


class OutboxEntry(models.Model):
    """One reaction still to run for one event, handed on after commit by the dispatcher."""

    event = models.ForeignKey(LeadEvent, on_delete=models.PROTECT, related_name="+")
    # the reaction's name, a key of settings.OUTBOX_REACTIONS' values (a dotted path)
    reaction = models.CharField(max_length=200)
    lead_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # not before: a failed attempt backs off
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "outbox entries"
        indexes = [
            # the dispatcher's work list stays small however long the table grows
            models.Index(
                fields=["id"],
                name="outbox_pending",
                condition=Q(dispatched_at__isnull=True, failed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reaction} for event {self.event_id}"


# scoring lives in its own package; its models belong to this app
from leads.scoring.models import (  # noqa: E402, F401
    ScoreSnapshot,
    ScoringApproval,
    ScoringModel,
    ScoringModelEvent,
    ScoringRun,
)
