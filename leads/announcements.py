"""Celebrate together: a won customer is announced to marketing with what brought it in."""

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Subquery
from django.template.loader import render_to_string
from django.utils import timezone

from alignment.lib.keyset import keyset_after, keyset_order
from alignment.lib.money import format_money
from alignment.models import MARKETING_ROLES, User
from content.models import DealStory, StoryOutcome
from leads.models import Announcement, Campaign, Lead, LeadEvent, Stage

logger = logging.getLogger(__name__)

WINS_PAGE_SIZE = 25

# long enough for a long company name and the deal value; mail clients show about 60-80 characters
SUBJECT_MAX = 120
TITLE_PREFIX = "New customer: "


def _one_line(text: str, limit: int | None = None) -> str:
    """`text` fit for a header line: control characters and line breaks become spaces, runs of
    spaces collapse, and past `limit` characters it is cut with an ellipsis."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


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
    # names are typed or imported by people: a line break in one must not break a subject
    return {
        "customer": _one_line(lead.company) or _one_line(lead.display_name),
        "contact": _one_line(lead.display_name),
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
    value = f" ({format_money(story['deal_value'])})" if story["deal_value"] else ""
    # a long name is shortened, never the deal value
    customer = _one_line(story["customer"], SUBJECT_MAX - len(TITLE_PREFIX) - len(value))
    title = f"{TITLE_PREFIX}{customer}{value}"
    body = render_to_string("leads/email/won.txt", {"story": story, "lead": lead})
    try:
        with transaction.atomic():
            return Announcement.objects.create(lead=lead, title=title, body=body, details=story)
    except IntegrityError:  # a concurrent run created it first
        return Announcement.objects.get(lead=lead)


def announcement_email(*, announcement: Announcement) -> int:
    """Send the announcement to every active marketer once; returns the number of recipients.

    The marketers are in Bcc, so nobody's address is shown to the others (nor to whoever a reply
    or a forward reaches); To: is the pipeline's own address, DEFAULT_FROM_EMAIL."""
    recipients = list(
        dict.fromkeys(
            User.objects.filter(is_active=True, role__in=MARKETING_ROLES)
            .exclude(email="")
            .order_by("pk")
            .values_list("email", flat=True)
        )
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
        # announcements written before titles were made one line may still hold a line break
        subject=_one_line(announcement.title, SUBJECT_MAX),
        body=announcement.body,
        to=[settings.DEFAULT_FROM_EMAIL],
        bcc=recipients,
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


# --- the Wins page: every won lead, newest first -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Win:
    lead: Lead
    won_at: datetime
    deal_value: Decimal | None
    announcement: Announcement | None
    story: DealStory | None = None  # why it was won, as the rep told it


@dataclass(frozen=True, slots=True)
class WinsPage:
    wins: list[Win]
    older: str | None  # the cursor of the next (older) page; None on the last one


def _cursor(lead: Lead) -> str:
    return f"{lead.won_at.isoformat()}_{lead.pk}"


def wins_cursor_parse(raw: str) -> tuple[datetime, int] | None:
    """(won_at, id) from a cursor this page gave out; None for anything else."""
    at, _, pk = (raw or "").rpartition("_")
    try:
        moment, number = datetime.fromisoformat(at), int(pk)
    except ValueError:
        return None
    if moment.tzinfo is None or not 0 < number < 2**63:
        return None
    return moment, number


def wins_page(
    *,
    since: datetime | None = None,
    owner_id: int | None = None,
    older_than: tuple[datetime, int] | None = None,
    size: int = WINS_PAGE_SIZE,
) -> WinsPage:
    """Every won lead (stage won, also those imported or seeded without an announcement), newest
    won first, with its announcement where there is one. Keyset pages on (won_at, id): a page
    costs one query however deep, and no COUNT over the won leads."""
    qs = Lead.objects.filter(stage=Stage.WON, won_at__isnull=False)
    if since is not None:
        qs = qs.filter(won_at__gte=since)
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if older_than is not None:
        qs = keyset_after(qs, "won_at", *older_than, descending=True)
    qs = keyset_order(qs, "won_at", descending=True)
    # the story of the lead's latest win, by id in the same query; the stories themselves (with
    # reasons and content) only when a row has one: a fixed number of queries either way
    latest_story = DealStory.objects.filter(lead=OuterRef("pk"), outcome=StoryOutcome.WON)
    qs = qs.annotate(
        win_story_id=Subquery(latest_story.order_by("-closed_at", "-id").values("id")[:1])
    )
    rows = list(qs.select_related("owner", "source", "campaign", "announcement")[: size + 1])
    story_ids = [lead.win_story_id for lead in rows[:size] if lead.win_story_id]
    stories = (
        DealStory.objects.prefetch_related("reasons", "assets").in_bulk(story_ids)
        if story_ids
        else {}
    )
    wins = [
        Win(
            lead=lead,
            won_at=lead.won_at,
            deal_value=lead.deal_value,
            announcement=getattr(lead, "announcement", None),
            story=stories.get(lead.win_story_id),
        )
        for lead in rows[:size]
    ]
    return WinsPage(wins=wins, older=_cursor(rows[size - 1]) if len(rows) > size else None)
