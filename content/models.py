"""The content library: what marketing produces for sales to use (issue 12). An asset is a link
or an uploaded file; the services in content.services are the only way one is written."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AssetKind(models.TextChoices):
    CASE_STUDY = "case_study", "Case study"
    ONE_PAGER = "one_pager", "One-pager"
    DECK = "deck", "Deck"
    VIDEO = "video", "Video"
    BLOG_POST = "blog_post", "Blog post"
    WEBINAR_RECORDING = "webinar_recording", "Webinar recording"
    TEMPLATE = "template", "Template"


class FunnelStage(models.TextChoices):
    AWARENESS = "awareness", "Awareness"
    CONSIDERATION = "consideration", "Consideration"
    DECISION = "decision", "Decision"


class Asset(models.Model):
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=AssetKind.choices)
    funnel_stage = models.CharField(max_length=16, choices=FunnelStage.choices)
    # free-text tags, stored as lists of case-folded words ("cfo", "it manager"; "banking")
    personas = models.JSONField(default=list, blank=True)
    industries = models.JSONField(default=list, blank=True)
    # exactly one of the two: a link, or a file uploaded here (type and size checked)
    url = models.URLField(max_length=500, blank=True)
    file = models.FileField(upload_to="content/%Y/%m/", blank=True)
    file_name = models.CharField(max_length=255, blank=True)  # as uploaded
    content_type = models.CharField(max_length=100, blank=True)  # as detected, served as
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    campaign = models.ForeignKey(
        "leads.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sales_ready = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(url="") & ~Q(file="")) | (~Q(url="") & Q(file="")),
                name="asset_url_or_file",
            )
        ]
        indexes = [models.Index(fields=["funnel_stage", "sales_ready"], name="asset_stage")]

    def __str__(self) -> str:
        return self.title


# --- sales using the library ---------------------------------------------------------------------


class AssetUseKind(models.TextChoices):
    SHARED = "shared", "Shared by sales"
    ENGAGED = "engaged", "Engaged (content download)"


class AssetUse(models.Model):
    """A touchpoint that concerns an asset: a rep shared it (touchpoint `content_shared`) or the
    lead engaged with it (a marketing touchpoint `content_download` naming the asset by id or
    URL). The content KPIs count these rows; the touchpoint stays the lead's record."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="uses")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    touchpoint = models.OneToOneField(
        "leads.Touchpoint", on_delete=models.CASCADE, related_name="asset_use"
    )
    kind = models.CharField(max_length=16, choices=AssetUseKind.choices)
    occurred_at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["asset", "kind", "occurred_at"], name="assetuse_asset"),
            models.Index(fields=["lead", "asset"], name="assetuse_lead"),
            models.Index(fields=["kind", "occurred_at"], name="assetuse_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: asset {self.asset_id}, lead {self.lead_id}"


# --- content requests: sales asks for what does not exist yet -----------------------------------


class RequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    PLANNED = "planned", "Planned"
    DONE = "done", "Done"
    DECLINED = "declined", "Declined"


class ContentRequest(models.Model):
    title = models.CharField(max_length=200)
    details = models.TextField(blank=True)
    funnel_stage = models.CharField(max_length=16, choices=FunnelStage.choices, blank=True)
    persona = models.CharField(max_length=100, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default="open")
    status_note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # the asset that answers it (set when marketing marks it done)
    asset = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    vote_count = models.PositiveIntegerField(default=0)  # kept by the vote service
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-vote_count", "-created_at", "-id"]
        indexes = [models.Index(fields=["status", "vote_count"], name="contentrequest_status")]

    def __str__(self) -> str:
        return self.title


class ContentRequestVote(models.Model):
    request = models.ForeignKey(ContentRequest, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="contentrequestvote_once")
        ]

    def __str__(self) -> str:
        return f"vote by {self.user_id} on request {self.request_id}"


class ContentRequestComment(models.Model):
    request = models.ForeignKey(ContentRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:60]


# --- voice of the prospect -----------------------------------------------------------------------


class ObjectionKind(models.TextChoices):
    QUESTION = "question", "Question"
    OBJECTION = "objection", "Objection"


class ObjectionCategory(models.TextChoices):
    PRICE = "price", "Price"
    COMPETITOR = "competitor", "Competitor"
    TIMING = "timing", "Timing"
    FEATURE = "feature", "Feature"
    INTEGRATION = "integration", "Integration"
    SECURITY = "security", "Security"
    OTHER = "other", "Other"


class Objection(models.Model):
    """A question or objection a rep heard from a lead, in the prospect's words."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(
        "leads.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=ObjectionKind.choices, default="objection")
    category = models.CharField(max_length=16, choices=ObjectionCategory.choices)
    competitor = models.CharField(max_length=100, blank=True)
    text = models.TextField()
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    logged_at = models.DateTimeField(default=timezone.now)
    # the asset marketing links as the answer: suggested on leads with an objection like it
    answer = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="answers"
    )
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-logged_at", "-id"]
        indexes = [
            models.Index(fields=["logged_at"], name="objection_time"),
            models.Index(fields=["category", "logged_at"], name="objection_category"),
            models.Index(fields=["lead", "logged_at"], name="objection_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.text[:60]}"


# --- lead flags: the half-open door --------------------------------------------------------------


class FlagReason(models.TextChoices):
    WRONG_DATA = "wrong_data", "Wrong data"
    WRONG_ROUTING = "wrong_routing", "Wrong routing"
    DUPLICATE = "duplicate", "Duplicate"
    UNCLEAR_SOURCE = "unclear_source", "Unclear source"
    OTHER = "other", "Other"


class FlagStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class FlagOutcome(models.TextChoices):
    FIXED = "fixed", "Data fixed"
    REROUTED = "rerouted", "Rerouted"
    MERGED = "merged", "Duplicate merged"
    EXPLAINED = "explained", "Explained, nothing to change"
    DECLINED = "declined", "Not a problem"


class LeadFlag(models.Model):
    """A rep's problem with a lead, raised for marketing. It never stops or pauses a clock."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=FlagReason.choices)
    comment = models.TextField()
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    raised_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=FlagStatus.choices, default="open")
    outcome = models.CharField(max_length=16, choices=FlagOutcome.choices, blank=True)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [
            models.Index(fields=["status", "raised_at"], name="leadflag_status"),
            models.Index(fields=["lead", "raised_at"], name="leadflag_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} on lead {self.lead_id}"


class FlagMessage(models.Model):
    flag = models.ForeignKey(LeadFlag, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:60]


# --- win and loss stories ------------------------------------------------------------------------


class StoryOutcome(models.TextChoices):
    WON = "won", "Won"
    LOST = "lost", "Lost"


class DealStory(models.Model):
    """What convinced the customer (won) or why we lost, told once per close by the rep. The
    reasons are leads.Reason codes of kind `won` or `lost`; source and campaign are the lead's at
    the close, so the KPIs by source and campaign do not move when the lead is edited later."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    stage_change = models.OneToOneField(
        "leads.StageChange", on_delete=models.CASCADE, related_name="story"
    )
    outcome = models.CharField(max_length=8, choices=StoryOutcome.choices)
    reasons = models.ManyToManyField("leads.Reason", related_name="+", blank=True)
    sentence = models.CharField(max_length=300, blank=True)
    competitor = models.CharField(max_length=100, blank=True)
    assets = models.ManyToManyField(Asset, related_name="stories", blank=True)
    source = models.ForeignKey(
        "leads.Source", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    campaign = models.ForeignKey(
        "leads.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField()  # the move's time
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-closed_at", "-id"]
        indexes = [models.Index(fields=["outcome", "closed_at"], name="dealstory_time")]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: lead {self.lead_id}"


# the rows that belong to a lead: a merge (leads.services.lead_merge) moves them to the survivor
LEAD_ROWS = {
    "asset_uses": AssetUse,
    "objections": Objection,
    "flags": LeadFlag,
    "stories": DealStory,
}
