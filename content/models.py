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
