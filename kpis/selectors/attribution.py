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
Read from the stage-stay rollup, which holds each opportunity's and win's first and last
campaign touch (kpis.rollups).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    BigIntegerField as BigInt,
)
from django.db.models import (
    Count,
    F,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce

from kpis.selectors.periods import Period
from kpis.selectors.stays import entered, names
from kpis.selectors.velocity import UNKNOWN_SOURCE, money
from leads.models import Campaign, Source, Stage

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
    """Stays annotated with the campaign of their first and last campaign touch before the
    cut-off (held by the rollup), falling back to the lead's campaign."""
    return qs.annotate(
        first_campaign=Coalesce(F("first_campaign_id"), F("campaign_id"), output_field=BigInt()),
        last_campaign=Coalesce(F("last_campaign_id"), F("campaign_id"), output_field=BigInt()),
    )


def _credits(qs: QuerySet, key: str) -> list[dict]:
    return list(qs.values(key).annotate(n=Count("id"), value=Sum("deal_value")).order_by())


def _ordered(credits: list[Credit]) -> tuple[Credit, ...]:
    return tuple(sorted(credits, key=lambda c: (-c.value, -c.deals, c.name)))


def _attribution(
    stage: str,
    *,
    period: Period,
    source_id: int | None,
    campaign_id: int | None,
    rep_id: int | None,
) -> Attribution:
    qs = entered(stage, period, source_id=source_id, campaign_id=campaign_id, rep_id=rep_id)
    sources = list(
        qs.values("source_id").annotate(n=Count("id"), value=Sum("deal_value")).order_by()
    )
    credited = _credited(qs)
    first = _credits(credited, "first_campaign")
    last = _credits(credited, "last_campaign")
    ids = {r["first_campaign"] for r in first} | {r["last_campaign"] for r in last}
    campaign_names = names(Campaign, ids)
    source_names = names(Source, {r["source_id"] for r in sources})

    def campaigns(rows, key):
        return _ordered(
            [
                Credit(r[key], campaign_names.get(r[key], NO_CAMPAIGN), r["n"], money(r["value"]))
                for r in rows
            ]
        )

    return Attribution(
        deals=sum(r["n"] for r in sources),
        value=money(sum(money(r["value"]) for r in sources)),
        by_source=_ordered(
            [
                Credit(
                    r["source_id"],
                    source_names.get(r["source_id"]) or UNKNOWN_SOURCE,
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
    """Pipeline created in the period by source and first/last-touch campaign. 5 queries."""
    return _attribution(
        Stage.OPPORTUNITY,
        period=period,
        source_id=source_id,
        campaign_id=campaign_id,
        rep_id=rep_id,
    )


def revenue_attribution(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> Attribution:
    """Revenue won in the period by source and first/last-touch campaign. 5 queries."""
    return _attribution(
        Stage.WON, period=period, source_id=source_id, campaign_id=campaign_id, rep_id=rep_id
    )
