"""Sales velocity and cycle length by source, from the lead event log (its stage-stay rollup).

    velocity = open opportunities x win rate x average deal / average cycle days

the deal value the open pipeline turns into per day at the period's pace.
- open opportunities: leads standing in "opportunity" at the period's end: those in it now that
  entered it before the end (the lead row's stage, which only lead_move writes, read by its
  stage index), and those that moved out of it after the end having entered it before (the
  rollup's opportunity stays that ended after the end: none for the current period);
- win rate: won / (won + lost from opportunity), over the deals closed in the period (by the
  time of their `lead.won` / `lead.lost` event); a lead lost before it became an opportunity
  (from SAL or SQL) is not a lost deal;
- average deal: the won deals' total value (the win's deal value) / won;
- cycle: calendar days from the lead's latest entry into MQL (the handover to sales) to the win,
  averaged over the period's wins. A win without an MQL before it (an imported history) has no
  cycle and is left out of the average (`cycles` says how many were measured).
Each row is one source (the lead's current source; "Unknown source" for none), and `total` is
the same over all of them, summed from the rows' numbers (no further query).
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from kpis.models import StageStay
from kpis.selectors.periods import Period
from kpis.selectors.stays import entered, names, stay_filters
from leads.models import Lead, Source, Stage

# a move's deal value, from its payload
DEAL_VALUE = Cast(KT("payload__deal_value"), DecimalField(max_digits=14, decimal_places=2))
UNKNOWN_SOURCE = "Unknown source"
CENTS = Decimal("0.01")


def money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENTS)


@dataclass(frozen=True, slots=True)
class VelocityRow:
    source_id: int | None
    source: str
    open_opportunities: int
    won: int
    lost: int
    won_value: Decimal
    cycles: int  # wins whose cycle was measured
    cycle_days_total: float

    @property
    def win_rate(self) -> float | None:
        """Percent."""
        closed = self.won + self.lost
        return round(100 * self.won / closed, 1) if closed else None

    @property
    def average_deal(self) -> Decimal | None:
        return (self.won_value / self.won).quantize(CENTS) if self.won else None

    @property
    def average_cycle_days(self) -> float | None:
        return round(self.cycle_days_total / self.cycles, 1) if self.cycles else None

    @property
    def velocity_per_day(self) -> Decimal | None:
        """Deal value per day; None while any factor is unknown (no deal closed or none won)."""
        rate, deal, days = self.win_rate, self.average_deal, self.average_cycle_days
        if rate is None or deal is None or not days:
            return None
        value = Decimal(self.open_opportunities) * Decimal(str(rate)) / 100 * deal
        return (value / Decimal(str(days))).quantize(CENTS)


@dataclass(frozen=True, slots=True)
class Velocity:
    rows: tuple[VelocityRow, ...]
    total: VelocityRow


def _still_open(period: Period, **filters) -> QuerySet:
    """Leads in opportunity now that entered it before the period's end (lead_open_opportunity:
    the lead rows carry the same filter columns as the rollup)."""
    return stay_filters(
        Lead.objects.filter(stage=Stage.OPPORTUNITY, stage_changed_at__lt=period.end), **filters
    )


def _left_after_end(period: Period, **filters) -> QuerySet:
    """Opportunity stays entered before the period's end that ended in a win or a loss at or
    after it (the rollup: one stay per entry, so one per lead and entry)."""
    return stay_filters(
        StageStay.objects.filter(
            stage=Stage.OPPORTUNITY,
            entered_at__lt=period.end,
            left_at__gte=period.end,
            exit_to__in=(Stage.WON, Stage.LOST),
        ),
        **filters,
    )


def _closed_in(period: Period, **filters) -> QuerySet:
    """The period's wins (from any stage) and losses from opportunity, each with its `cycle`
    from the latest MQL entry before the win."""
    return (
        entered([Stage.WON, Stage.LOST], period, **filters)
        .filter(Q(stage=Stage.WON) | Q(from_stage=Stage.OPPORTUNITY))
        .annotate(cycle=ExpressionWrapper(F("entered_at") - F("mql_at"), DurationField()))
    )


def sales_velocity(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> Velocity:
    """Velocity and its factors by source for the period (see the module doc). 4 queries."""
    filters = {"source_id": source_id, "campaign_id": campaign_id, "rep_id": rep_id}
    still_open = (
        _still_open(period, **filters).values("source_id").annotate(n=Count("id")).order_by()
    )
    left_later = (
        _left_after_end(period, **filters)
        .values("source_id")
        .annotate(n=Count("lead_id", distinct=True))
        .order_by()
    )
    is_won = Q(stage=Stage.WON)
    closed_rows = (
        _closed_in(period, **filters)
        .values("source_id")
        .annotate(
            won=Count("id", filter=is_won),
            lost=Count("id", filter=~is_won),
            value=Sum("deal_value", filter=is_won),
            cycles=Count("id", filter=is_won & Q(mql_at__isnull=False)),
            cycle=Sum("cycle", filter=is_won),
        )
        .order_by()
    )
    merged: dict[int | None, dict] = {}
    for r in [*still_open, *left_later]:
        row = merged.setdefault(r["source_id"], {})
        row["open"] = row.get("open", 0) + r["n"]
    for r in closed_rows:
        merged.setdefault(r["source_id"], {}).update(r)
    sources = names(Source, merged)
    rows = [
        VelocityRow(
            source_id=key,
            source=sources.get(key) or UNKNOWN_SOURCE,
            open_opportunities=m.get("open", 0),
            won=m.get("won", 0),
            lost=m.get("lost", 0),
            won_value=money(m.get("value")),
            cycles=m.get("cycles", 0),
            cycle_days_total=(m.get("cycle") or timedelta(0)) / timedelta(days=1),
        )
        for key, m in merged.items()
    ]
    rows.sort(key=lambda r: (-r.won_value, -r.open_opportunities, r.source))
    total = VelocityRow(
        source_id=None,
        source="All sources",
        open_opportunities=sum(r.open_opportunities for r in rows),
        won=sum(r.won for r in rows),
        lost=sum(r.lost for r in rows),
        won_value=money(sum(r.won_value for r in rows)),
        cycles=sum(r.cycles for r in rows),
        cycle_days_total=sum(r.cycle_days_total for r in rows),
    )
    return Velocity(rows=tuple(rows), total=total)
