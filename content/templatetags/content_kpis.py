"""The content KPIs where people look, so that the pages' views need nothing from kpis/:

- `{% asset_kpis asset as k %}` (the asset page): its shares, leads engaged and touched closes
  this month so far and over the last 90 days, each beside the "no content" baseline;
- `{% home_content_kpis agreement_tz now as hc %}` (marketing's home): this week's shares and engagement, the
  unused share of the sales-ready library, and the open content requests with the most votes.

Periods are cut in the goals' time zone (the agreement's calendar's, else the company's)."""

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django import template
from django.utils import timezone

from content.models import Asset, ContentRequest, RequestStatus
from kpis.selectors.content import (
    ContentRow,
    content_shares,
    content_unused,
    content_usage,
    open_requests,
)
from kpis.selectors.goals import goals_timezone
from kpis.selectors.periods import Period, iso_week_of, iso_week_period, month_period

register = template.Library()

RECENT_DAYS = 90
HOME_REQUESTS = 3
HOME_UNUSED = 0  # the home shows the counts only
HOME_TOP = 3


@dataclass(frozen=True)
class AssetWindow:
    label: str
    period: Period
    row: ContentRow  # the asset's (zeros when it had nothing in the window)
    baseline: ContentRow  # the closed opportunities that touched no content


def _window(asset: Asset, label: str, period: Period) -> AssetWindow:
    usage = content_usage(period=period, asset_id=asset.pk)
    row = usage.rows[0] if usage.rows else ContentRow(asset.pk, asset.title, 0, 0, 0, 0, None)
    return AssetWindow(label=label, period=period, row=row, baseline=usage.baseline)


@register.simple_tag
def asset_kpis(asset: Asset | None) -> dict:
    if asset is None or asset.pk is None:
        return {}
    now = timezone.now()
    tz = goals_timezone()
    month = month_period(now.astimezone(ZoneInfo(tz)).strftime("%Y-%m"), tz=tz).until(now)
    recent = Period(now - timedelta(days=RECENT_DAYS), now, f"last {RECENT_DAYS} days", "days", tz)
    return {
        "windows": [_window(asset, "This month", month), _window(asset, "Last 90 days", recent)],
        "requests": list(ContentRequest.objects.filter(asset=asset).order_by("-updated_at")[:5]),
        "timezone": tz,
    }


@register.simple_tag
def home_content_kpis(tz: str = "", now=None) -> dict:
    """`tz` and `now` as the home view has them (agreement_tz, now); else looked up."""
    now = now or timezone.now()
    tz = tz or goals_timezone()
    week = iso_week_period(iso_week_of(now, tz=tz), tz=tz).until(now)
    shared = content_shares(period=week, limit=HOME_TOP)
    return {
        "week": week,
        "shares": shared.shares,
        "leads_engaged": shared.leads_engaged,
        "top": shared.top,
        "unused": content_unused(period=week, limit=HOME_UNUSED),
        "requests": open_requests(limit=HOME_REQUESTS),
        "open_requests": ContentRequest.objects.filter(status=RequestStatus.OPEN).count(),
    }
