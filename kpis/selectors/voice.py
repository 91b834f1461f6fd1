"""Voice of the prospect in figures: which questions and objections reps heard in a period, by
category (and by a segment of the leads), the competitors they named, and the latest quotes.

An objection counts in the period it was logged in (`logged_at`, start inclusive, end exclusive).
Filters: `source_id` is the lead's current source; `campaign_id` is the campaign the objection
was logged under (the lead's campaign at that moment, kept on the row), and so is the campaign
segment. The industry and company size segments read the lead as it is now. Shares are percents
of the segment's own total (of the whole period when there is no segment), rounded to 0.1.
Competitor names are counted case-insensitively (shown in their most used spelling), so "Acme"
and "ACME" are one competitor.
"""

from dataclasses import dataclass

from django.db.models import Case, CharField, Count, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, Lower, Trim

from content.models import Objection, ObjectionCategory
from kpis.selectors.funnel import _share
from kpis.selectors.periods import Period

TOP_COMPETITORS = 10
REPORT_TOP = 5
REPORT_QUOTES = 5

SEGMENTS = {
    "industry": "Industry",
    "source": "Source",
    "campaign": "Campaign",
    "size": "Company size",
}
SIZE_BANDS = ((50, "Under 50"), (250, "50–249"), (1000, "250–999"))
SIZE_TOP, SIZE_UNKNOWN = "1,000 or more", "Unknown size"
UNKNOWN = {
    "industry": "Unknown industry",
    "source": "Unknown source",
    "campaign": "No campaign",
    "size": SIZE_UNKNOWN,
}
CATEGORY_LABELS = dict(ObjectionCategory.choices)


def _segment_expression(segment: str):
    if segment == "industry":
        return Lower(Trim("lead__industry"))
    if segment == "source":
        return Coalesce("lead__source__name", Value(""))
    if segment == "campaign":
        return Coalesce("campaign__name", Value(""))
    return Case(
        When(lead__company_size__isnull=True, then=Value("")),
        *(When(lead__company_size__lt=limit, then=Value(label)) for limit, label in SIZE_BANDS),
        default=Value(SIZE_TOP),
        output_field=CharField(),
    )


def objections_in(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    category: str | None = None,
) -> QuerySet:
    """The objections logged in `period`, filtered as the module says."""
    qs = Objection.objects.filter(logged_at__gte=period.start, logged_at__lt=period.end)
    if source_id is not None:
        qs = qs.filter(lead__source_id=source_id)
    if campaign_id is not None:
        qs = qs.filter(campaign_id=campaign_id)
    if category:
        qs = qs.filter(category=category)
    return qs


@dataclass(frozen=True, slots=True)
class CategoryRow:
    segment: str | None  # the segment's value (None: no segment asked)
    category: str
    label: str
    count: int
    share: float | None  # of the segment's objections, percent
    answered: int  # with an asset linked as the answer
    answered_share: float | None


def objection_categories(
    *,
    period: Period,
    segment: str | None = None,
    source_id: int | None = None,
    campaign_id: int | None = None,
    category: str | None = None,
) -> list[CategoryRow]:
    """Objections by category (within each segment value when `segment` is one of SEGMENTS):
    the biggest segment first, then the most frequent category. One query."""
    if segment is not None and segment not in SEGMENTS:
        raise ValueError(f"unknown segment {segment!r}")
    qs = objections_in(
        period=period, source_id=source_id, campaign_id=campaign_id, category=category
    )
    if segment is not None:
        qs = qs.annotate(segment_value=_segment_expression(segment))
    else:
        qs = qs.annotate(segment_value=Value("", output_field=CharField()))
    grouped = (
        qs.values("segment_value", "category")
        .annotate(
            count=Count("id"),
            answered=Count("id", filter=Q(answer__isnull=False), output_field=IntegerField()),
        )
        .order_by()
    )
    groups = list(grouped)
    totals: dict[str, int] = {}
    for g in groups:
        totals[g["segment_value"]] = totals.get(g["segment_value"], 0) + g["count"]
    order = list(ObjectionCategory.values)
    groups.sort(
        key=lambda g: (
            -totals[g["segment_value"]],
            g["segment_value"],
            -g["count"],
            order.index(g["category"]) if g["category"] in order else len(order),
        )
    )
    return [
        CategoryRow(
            segment=(g["segment_value"] or UNKNOWN[segment]) if segment else None,
            category=g["category"],
            label=CATEGORY_LABELS.get(g["category"], g["category"]),
            count=g["count"],
            share=_share(g["count"], totals[g["segment_value"]]),
            answered=g["answered"],
            answered_share=_share(g["answered"], g["count"]),
        )
        for g in groups
    ]


@dataclass(frozen=True, slots=True)
class CompetitorRow:
    name: str
    count: int
    share: float | None  # of the objections that name a competitor, percent


def objection_competitors(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    category: str | None = None,
    limit: int = TOP_COMPETITORS,
) -> list[CompetitorRow]:
    """The competitors named in the period's objections (any category), most named first."""
    spellings = (
        objections_in(
            period=period, source_id=source_id, campaign_id=campaign_id, category=category
        )
        .exclude(competitor="")
        .values("competitor")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts: dict[str, int] = {}
    best: dict[str, tuple[int, str]] = {}  # the most used spelling (ties: the first in order)
    for row in spellings:
        name, count = row["competitor"], row["count"]
        key = name.casefold()
        counts[key] = counts.get(key, 0) + count
        if key not in best or (-count, name) < (-best[key][0], best[key][1]):
            best[key] = (count, name)
    named = sum(counts.values())
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    return [
        CompetitorRow(name=best[k][1], count=counts[k], share=_share(counts[k], named))
        for k in ranked[:limit]
    ]


def recent_objections(
    *,
    period: Period,
    limit: int,
    source_id: int | None = None,
    campaign_id: int | None = None,
    category: str | None = None,
) -> list[Objection]:
    """The latest objections of the period, newest first, with lead, campaign, rep and answer."""
    qs = objections_in(
        period=period, source_id=source_id, campaign_id=campaign_id, category=category
    )
    return list(
        qs.select_related("lead", "campaign", "logged_by", "answer").order_by("-logged_at", "-id")[
            :limit
        ]
    )


def objections_report(*, period: Period) -> dict:
    """The weekly report's "Top objections", JSON-ready: the period's total, its top categories
    and competitors, and the latest quotes."""
    categories = objection_categories(period=period)
    total = sum(r.count for r in categories)
    return {
        "total": total,
        "categories": [
            {"category": r.category, "label": r.label, "count": r.count, "share": r.share}
            for r in categories[:REPORT_TOP]
        ],
        "competitors": [
            {"name": r.name, "count": r.count}
            for r in objection_competitors(period=period, limit=REPORT_TOP)
        ],
        "recent": [
            {
                "id": o.pk,
                "kind": o.kind,
                "category": o.category,
                "label": CATEGORY_LABELS.get(o.category, o.category),
                "competitor": o.competitor,
                "text": o.text,
                "lead_id": o.lead_id,
                "lead": o.lead.display_name,
                "rep": o.logged_by.username if o.logged_by else None,
                "logged_at": o.logged_at.isoformat(),
            }
            for o in recent_objections(period=period, limit=REPORT_QUOTES)
        ],
    }
