"""Pipeline and revenue created, by source and by campaign on first and on last touch.

- Pipeline created: the moves into "opportunity" in the period, with the deal value of the move
  (the same count and value as marketing's `pipeline_created`).
- Revenue created: the wins (`lead.won`) in the period, with the win's deal value.
- By source: the lead's (current) source; a lead has one source, so first and last touch agree.
- By campaign, first touch: the campaign of the lead's earliest touchpoint that has a campaign,
  at or before the lead's move into opportunity; last touch: of the latest such touchpoint. For a
  win, the touchpoints count up to the deal's move into opportunity (its latest one before the
  win), so a win credits the campaigns its pipeline did; a win with no opportunity before it (an
  imported history) counts the touchpoints up to the win. A lead with no campaign touchpoint by
  then is credited to its own campaign (set at intake from its UTM values), and otherwise to
  "No campaign". Every deal is credited whole to one campaign per model (no splitting).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    BigIntegerField as BigInt,
)
from django.db.models import (
    Count,
    DateTimeField,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from kpis.selectors.funnel import lead_filters
from kpis.selectors.periods import Period
from kpis.selectors.velocity import DEAL_VALUE, UNKNOWN_SOURCE, money
from leads.models import Campaign, EventType, LeadEvent, Stage, Touchpoint

NO_CAMPAIGN = "No campaign"


@dataclass(frozen=True, slots=True)
class Credit:
    key_id: int | None  # the source's or campaign's id; None for none
    name: str
    deals: int
    value: Decimal


@dataclass(frozen=True, slots=True)
class Attribution:
    """One measure (pipeline or revenue) three ways; each list is ordered by value, most first."""

    deals: int
    value: Decimal
    by_source: tuple[Credit, ...]
    by_first_touch: tuple[Credit, ...]
    by_last_touch: tuple[Credit, ...]


def _credited(qs: QuerySet) -> QuerySet:
    """Events annotated with the campaign of the first and the last campaign touchpoint at or
    before their `cutoff` annotation (falling back to the lead's campaign)."""
    touches = Touchpoint.objects.filter(
        lead_id=OuterRef("lead_id"),
        campaign_id__isnull=False,
        occurred_at__lte=OuterRef("cutoff"),
    )
    first = touches.order_by("occurred_at", "id").values("campaign_id")[:1]
    last = touches.order_by("-occurred_at", "-id").values("campaign_id")[:1]
    return qs.annotate(
        first_campaign=Coalesce(Subquery(first), F("lead__campaign_id"), output_field=BigInt()),
        last_campaign=Coalesce(Subquery(last), F("lead__campaign_id"), output_field=BigInt()),
    )


def _pipeline_events(period: Period) -> QuerySet:
    return LeadEvent.objects.filter(
        type=EventType.LEAD_STAGE_CHANGED,
        payload__to=Stage.OPPORTUNITY,
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
        lead_id__isnull=False,
    ).annotate(cutoff=F("occurred_at"))


def _revenue_events(period: Period) -> QuerySet:
    opened = LeadEvent.objects.filter(
        type=EventType.LEAD_STAGE_CHANGED,
        lead_id=OuterRef("lead_id"),
        payload__to=Stage.OPPORTUNITY,
        occurred_at__lte=OuterRef("occurred_at"),
    ).order_by("-occurred_at", "-id")
    return LeadEvent.objects.filter(
        type=EventType.LEAD_WON,
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
        lead_id__isnull=False,
    ).annotate(
        cutoff=Coalesce(
            Subquery(opened.values("occurred_at")[:1], output_field=DateTimeField()),
            F("occurred_at"),
        )
    )


def _credits(qs: QuerySet, key: str) -> list[dict]:
    return list(qs.values(key).annotate(n=Count("id"), value=Sum(DEAL_VALUE)).order_by())


def _ordered(credits: list[Credit]) -> tuple[Credit, ...]:
    return tuple(sorted(credits, key=lambda c: (-c.value, -c.deals, c.name)))


def _attribution(
    qs: QuerySet, *, source_id: int | None, campaign_id: int | None, rep_id: int | None
) -> Attribution:
    qs = lead_filters(qs, source_id=source_id, campaign_id=campaign_id, rep_id=rep_id)
    sources = list(
        qs.values("lead__source_id", "lead__source__name")
        .annotate(n=Count("id"), value=Sum(DEAL_VALUE))
        .order_by()
    )
    credited = _credited(qs)
    first = _credits(credited, "first_campaign")
    last = _credits(credited, "last_campaign")
    ids = {r["first_campaign"] for r in first} | {r["last_campaign"] for r in last}
    names = dict(Campaign.objects.filter(pk__in=ids - {None}).values_list("pk", "name"))

    def campaigns(rows, key):
        return _ordered(
            [
                Credit(r[key], names.get(r[key], NO_CAMPAIGN), r["n"], money(r["value"]))
                for r in rows
            ]
        )

    return Attribution(
        deals=sum(r["n"] for r in sources),
        value=money(sum(money(r["value"]) for r in sources)),
        by_source=_ordered(
            [
                Credit(
                    r["lead__source_id"],
                    r["lead__source__name"] or UNKNOWN_SOURCE,
                    r["n"],
                    money(r["value"]),
                )
                for r in sources
            ]
        ),
        by_first_touch=campaigns(first, "first_campaign"),
        by_last_touch=campaigns(last, "last_campaign"),
    )


def pipeline_attribution(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> Attribution:
    """Pipeline created in the period by source and first/last-touch campaign. 4 queries."""
    return _attribution(
        _pipeline_events(period), source_id=source_id, campaign_id=campaign_id, rep_id=rep_id
    )


def revenue_attribution(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> Attribution:
    """Revenue won in the period by source and first/last-touch campaign. 4 queries."""
    return _attribution(
        _revenue_events(period), source_id=source_id, campaign_id=campaign_id, rep_id=rep_id
    )
