"""The content KPIs: what sales did with the library in a period, and how the opportunities that
touched an asset closed against those that touched none.

- shares: `AssetUse` rows of kind `shared` (a rep's `content_shared` touchpoint) in the period;
- leads engaged: distinct leads with an `AssetUse` of kind `engaged` (a content download naming
  the asset) in the period;
- opportunities touched: the opportunity stays (the stage-stay rollup) that closed in the period,
  won or lost (left "opportunity" for won or lost at a time in the period), of leads that had an
  `AssetUse` of the asset, of either kind, before the close (at any time before it, also before
  the lead became an opportunity). A lead that touched three assets counts for each of them;
- win rate: won / touched opportunities; days: calendar days from entering opportunity to the
  close, the median over the touched opportunities (won and lost alike);
- the baseline ("No content"): the same over the closed opportunities whose lead had no
  `AssetUse` at all before the close;
- unused: the sales-ready assets created before the period's end that sales did not share in the
  period (the flag as it is now: its history is not kept).

Filters `source_id` and `campaign_id` are the lead's current ones, as everywhere in the KPIs.
Every figure costs a fixed number of queries.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from django.db.models import Count, Min, Q, QuerySet

from content.models import Asset, AssetUse, AssetUseKind, ContentRequest, RequestStatus
from kpis.models import StageStay
from kpis.selectors.periods import Period
from kpis.selectors.stays import stay_filters
from leads.models import Stage

NO_CONTENT = "No content"
TOP_SHARED = 5
UNUSED_LISTED = 5
TOP_REQUESTS = 3


@dataclass(frozen=True, slots=True)
class ContentRow:
    asset_id: int | None  # None: the baseline, opportunities that touched no content
    title: str
    shares: int
    leads_engaged: int
    opportunities: int  # closed in the period (won or lost), touched before the close
    won: int
    median_days: float | None  # entering opportunity to the close, over `opportunities`

    @property
    def lost(self) -> int:
        return self.opportunities - self.won

    @property
    def win_rate(self) -> float | None:
        """Percent."""
        return round(100 * self.won / self.opportunities, 1) if self.opportunities else None


@dataclass(frozen=True, slots=True)
class ContentUsage:
    rows: tuple[ContentRow, ...]  # the assets with a share, an engagement or a touched close
    baseline: ContentRow  # the closed opportunities that touched no content
    shares: int  # all shares in the period
    leads_engaged: int  # distinct leads that engaged with any asset


@dataclass(frozen=True, slots=True)
class UnusedAsset:
    asset_id: int
    title: str
    owner: str
    created_at: datetime
    age_days: int  # at the period's end


@dataclass(frozen=True, slots=True)
class ContentUnused:
    total: int  # sales-ready assets existing at the period's end
    unused: int  # of those, the ones sales never shared in the period
    assets: tuple[UnusedAsset, ...]  # the unused ones, oldest first (cut at the caller's limit)

    @property
    def share(self) -> float | None:
        """Percent of the sales-ready library sales did not share."""
        return round(100 * self.unused / self.total, 1) if self.total else None


def _lead_filters(qs: QuerySet, *, source_id: int | None, campaign_id: int | None) -> QuerySet:
    if source_id is not None:
        qs = qs.filter(lead__source_id=source_id)
    if campaign_id is not None:
        qs = qs.filter(lead__campaign_id=campaign_id)
    return qs


def _uses_in(period: Period, **filters) -> QuerySet:
    return _lead_filters(
        AssetUse.objects.filter(occurred_at__gte=period.start, occurred_at__lt=period.end),
        **filters,
    )


def _closed_opportunities(period: Period, **filters) -> QuerySet[StageStay]:
    """Opportunity stays that ended in a win or a loss in the period."""
    return stay_filters(
        StageStay.objects.filter(
            stage=Stage.OPPORTUNITY,
            left_at__gte=period.start,
            left_at__lt=period.end,
            exit_to__in=(Stage.WON, Stage.LOST),
        ),
        **filters,
    )


def _days(entered: datetime, left: datetime) -> float:
    return (left - entered) / timedelta(days=1)


def _median(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def content_usage(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    asset_id: int | None = None,
) -> ContentUsage:
    """Shares, engagement and touched closes per asset (see the module doc), and the baseline.
    `asset_id` keeps one asset's row (the baseline stays the whole library's). 5 queries."""
    filters = {"source_id": source_id, "campaign_id": campaign_id}
    uses = _uses_in(period, **filters)
    shared, engaged = Q(kind=AssetUseKind.SHARED), Q(kind=AssetUseKind.ENGAGED)
    counts = {
        r["asset_id"]: r
        for r in uses.filter(**({"asset_id": asset_id} if asset_id else {}))
        .values("asset_id")
        .annotate(
            shares=Count("id", filter=shared),
            engaged=Count("lead_id", distinct=True, filter=engaged),
        )
        .order_by()
    }
    totals = uses.aggregate(
        shares=Count("id", filter=shared), engaged=Count("lead_id", distinct=True, filter=engaged)
    )
    closes = list(
        _closed_opportunities(period, **filters).values_list(
            "lead_id", "entered_at", "left_at", "exit_to"
        )
    )
    # each closed lead's first use of each asset
    first_use: dict[int, dict[int, datetime]] = defaultdict(dict)
    rows = (
        AssetUse.objects.filter(
            lead_id__in=_closed_opportunities(period, **filters).values("lead_id")
        )
        .values("lead_id", "asset_id")
        .annotate(first=Min("occurred_at"))
        .order_by()
    )
    for r in rows:
        first_use[r["lead_id"]][r["asset_id"]] = r["first"]
    touched: dict[int | None, list[tuple[bool, float]]] = defaultdict(list)
    for lead_id, entered_at, left_at, exit_to in closes:
        outcome = (exit_to == Stage.WON, _days(entered_at, left_at))
        assets = [a for a, at in first_use.get(lead_id, {}).items() if at < left_at]
        for asset in assets or [None]:
            touched[asset].append(outcome)
    ids = set(counts) | {a for a in touched if a is not None}
    if asset_id is not None:
        ids &= {asset_id}
    titles = dict(Asset.objects.filter(pk__in=ids).values_list("pk", "title"))

    def row(key: int | None, title: str) -> ContentRow:
        c = counts.get(key, {})
        closed = touched.get(key, [])
        return ContentRow(
            asset_id=key,
            title=title,
            shares=c.get("shares", 0),
            leads_engaged=c.get("engaged", 0),
            opportunities=len(closed),
            won=sum(1 for won, _ in closed if won),
            median_days=_median([days for _, days in closed]),
        )

    rows = [row(key, titles[key]) for key in ids if key in titles]
    rows.sort(key=lambda r: (-r.shares, -r.opportunities, -r.leads_engaged, r.title, r.asset_id))
    return ContentUsage(
        rows=tuple(rows),
        baseline=row(None, NO_CONTENT),
        shares=totals["shares"],
        leads_engaged=totals["engaged"],
    )


@dataclass(frozen=True, slots=True)
class SharedAsset:
    asset_id: int
    title: str
    shares: int
    leads_engaged: int


@dataclass(frozen=True, slots=True)
class ContentShares:
    """Shares and engagement only (no closes): marketing's home and the weekly report."""

    shares: int
    leads_engaged: int
    top: tuple[SharedAsset, ...]  # the most shared assets, most first


def content_shares(*, period: Period, limit: int = TOP_SHARED) -> ContentShares:
    """The period's shares and engaged leads, and the `limit` most shared assets, counted as
    content_usage counts them. 2 queries."""
    uses = _uses_in(period, source_id=None, campaign_id=None)
    shared, engaged = Q(kind=AssetUseKind.SHARED), Q(kind=AssetUseKind.ENGAGED)
    totals = uses.aggregate(
        shares=Count("id", filter=shared), engaged=Count("lead_id", distinct=True, filter=engaged)
    )
    top = (
        uses.values("asset_id", "asset__title")
        .annotate(
            shares=Count("id", filter=shared),
            engaged=Count("lead_id", distinct=True, filter=engaged),
        )
        .filter(shares__gt=0)
        .order_by("-shares", "-engaged", "asset__title", "asset_id")[:limit]
    )
    return ContentShares(
        shares=totals["shares"],
        leads_engaged=totals["engaged"],
        top=tuple(
            SharedAsset(r["asset_id"], r["asset__title"], r["shares"], r["engaged"]) for r in top
        ),
    )


def content_unused(*, period: Period, limit: int | None = None) -> ContentUnused:
    """The sales-ready assets existing at the period's end that sales did not share in it,
    oldest first (`limit` of them listed; `total` and `unused` count all). 2 queries."""
    ready = Asset.objects.filter(sales_ready=True, created_at__lt=period.end)
    shared = AssetUse.objects.filter(
        kind=AssetUseKind.SHARED, occurred_at__gte=period.start, occurred_at__lt=period.end
    ).values("asset_id")
    unused = ready.exclude(pk__in=shared)
    counts = ready.aggregate(total=Count("id"), unused=Count("id", filter=~Q(pk__in=shared)))
    listed = unused.select_related("owner").order_by("created_at", "id")
    return ContentUnused(
        total=counts["total"],
        unused=counts["unused"],
        assets=tuple(
            UnusedAsset(
                asset_id=a.pk,
                title=a.title,
                owner=(a.owner.get_full_name() or a.owner.username) if a.owner else "",
                created_at=a.created_at,
                age_days=max(0, (period.end - a.created_at).days),
            )
            for a in (listed[:limit] if limit is not None else listed)
        ),
    )


def open_requests(*, limit: int) -> list[ContentRequest]:
    """The open content requests with the most votes (oldest first among equals)."""
    return list(
        ContentRequest.objects.filter(status=RequestStatus.OPEN).order_by(
            "-vote_count", "created_at", "id"
        )[:limit]
    )


def content_report(*, period: Period) -> dict:
    """The weekly report's content section, JSON-ready."""
    shared = content_shares(period=period, limit=TOP_SHARED)
    unused = content_unused(period=period, limit=UNUSED_LISTED)
    return {
        "shares": shared.shares,
        "leads_engaged": shared.leads_engaged,
        "top_shared": [
            {
                "asset_id": a.asset_id,
                "title": a.title,
                "shares": a.shares,
                "leads_engaged": a.leads_engaged,
            }
            for a in shared.top
        ],
        "unused": {
            "count": unused.unused,
            "total": unused.total,
            "share": unused.share,
            "titles": [a.title for a in unused.assets],
            "more": unused.unused - len(unused.assets),  # unused ones not listed
        },
        "requests": [
            {"id": r.pk, "title": r.title, "votes": r.vote_count}
            for r in open_requests(limit=TOP_REQUESTS)
        ],
    }
