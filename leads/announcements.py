"""Celebrate together: a won customer is announced to marketing with what brought it in."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from alignment.models import MARKETING_ROLES, User
from leads.models import Announcement, Campaign, Lead, LeadEvent, Stage

logger = logging.getLogger(__name__)


def won_story(*, lead: Lead) -> dict:
    """The customer, the deal, the source, the campaigns and touchpoints that led there, the rep."""
    touchpoints = lead.touchpoints.select_related("campaign").order_by("occurred_at")
    by_kind = {
        row["kind"]: row["n"]
        for row in touchpoints.order_by().values("kind").annotate(n=Count("id"))
    }
    campaign_ids = set(touchpoints.exclude(campaign=None).values_list("campaign_id", flat=True))
    if lead.campaign_id:
        campaign_ids.add(lead.campaign_id)
    campaigns = list(Campaign.objects.filter(id__in=campaign_ids).order_by("name"))
    first = touchpoints.first()
    return {
        "customer": lead.company or lead.display_name,
        "contact": lead.display_name,
        "deal_value": str(lead.deal_value) if lead.deal_value is not None else None,
        "source": lead.source.name if lead.source_id else None,
        "campaigns": [c.name for c in campaigns],
        "touchpoint_count": sum(by_kind.values()),
        "touchpoints_by_kind": by_kind,
        "first_touch": (
            {"kind": first.get_kind_display(), "at": first.occurred_at.isoformat()}
            if first
            else None
        ),
        "recent_touchpoints": [
            {
                "kind": t.get_kind_display(),
                "at": t.occurred_at.isoformat(),
                "campaign": t.campaign.name if t.campaign_id else None,
            }
            for t in touchpoints.reverse()[:10]
        ],
        "rep": str(lead.owner) if lead.owner_id else None,
        "won_at": lead.won_at.isoformat() if lead.won_at else None,
    }


def announcement_for_won(*, lead: Lead) -> Announcement | None:
    """Create the announcement once; a second call returns the existing one."""
    if lead.stage != Stage.WON:
        return None
    existing = Announcement.objects.filter(lead=lead).first()
    if existing:
        return existing
    story = won_story(lead=lead)
    value = f" ({story['deal_value']})" if story["deal_value"] else ""
    title = f"New customer: {story['customer']}{value}"
    body = render_to_string("leads/email/won.txt", {"story": story, "lead": lead})
    try:
        with transaction.atomic():
            return Announcement.objects.create(lead=lead, title=title, body=body, details=story)
    except IntegrityError:  # a concurrent run created it first
        return Announcement.objects.get(lead=lead)


def announcement_email(*, announcement: Announcement) -> int:
    """Send the announcement to every active marketer once; returns the number of recipients."""
    recipients = list(
        User.objects.filter(is_active=True, role__in=MARKETING_ROLES)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        return 0
    # claim before sending so that a task running twice does not send twice
    now = timezone.now()
    if not Announcement.objects.filter(id=announcement.id, emailed_at=None).update(emailed_at=now):
        return 0
    context = {
        "story": announcement.details,
        "lead": announcement.lead,
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=announcement.title,
        body=announcement.body,
        to=recipients,
    )
    message.attach_alternative(render_to_string("leads/email/won.html", context), "text/html")
    try:
        message.send()
    except Exception:
        # give the claim back so a retry can send it
        Announcement.objects.filter(id=announcement.id).update(emailed_at=None)
        raise
    return len(recipients)


def won_reaction(event: LeadEvent) -> None:
    """Outbox reaction to lead.won: the announcement, and its email to marketing (once)."""
    lead = Lead.objects.select_related("owner", "source").filter(pk=event.lead_id).first()
    if lead is None:
        return
    announcement = announcement_for_won(lead=lead)
    if announcement is not None:
        announcement_email(announcement=announcement)
