"""Sales' figures, from the SLA clocks and the lead event log (see the package docstring)."""

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DateTimeField,
    ExpressionWrapper,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from kpis.selectors.periods import Period
from leads.models import FIRST_TOUCH_KINDS, EventType, LeadEvent
from sla.clocks.models import ClockKind, ClockStatus, SlaClock


def _response_clocks(*, period: Period, rep_id: int | None) -> QuerySet[SlaClock]:
    qs = SlaClock.objects.filter(
        kind=ClockKind.RESPONSE, started_at__gte=period.start, started_at__lt=period.end
    )
    return qs.filter(owner_id=rep_id) if rep_id is not None else qs


@dataclass(frozen=True, slots=True)
class ResponseAttainment:
    started: int  # response clocks started in the period, cancelled ones left out
    met: int  # first touch by the due time
    breached: int  # touched late, or not at all and past due
    running: int  # not touched yet and not due yet
    share: float | None  # met / started, percent


def sla_response_attainment(*, period: Period, rep_id: int | None = None) -> ResponseAttainment:
    """Response clocks started in the period (cancelled ones - recycled, merged, restarted on
    reassignment - left out) and how many were met by their due time."""
    counts = (
        _response_clocks(period=period, rep_id=rep_id)
        .exclude(status=ClockStatus.CANCELLED)
        .aggregate(
            started=Count("id"),
            met=Count("id", filter=Q(status=ClockStatus.MET)),
            breached=Count("id", filter=Q(status=ClockStatus.BREACHED)),
        )
    )
    started, met, breached = counts["started"], counts["met"], counts["breached"]
    return ResponseAttainment(
        started=started,
        met=met,
        breached=breached,
        running=started - met - breached,
        share=round(100 * met / started, 1) if started else None,
    )


@dataclass(frozen=True, slots=True)
class SpeedToLead:
    responded: int
    median_hours: float | None
    p90_hours: float | None


def _percentile(qs: QuerySet, field: str, n: int, share: float) -> float:
    """Linear interpolation between the two ranks around share × (n - 1), as percentile_cont
    does; read with ORDER BY ... OFFSET so that it works on every database."""
    position = share * (n - 1)
    low = math.floor(position)
    values = list(qs.order_by(field).values_list(field, flat=True)[low : low + 2])
    if len(values) == 1 or position == low:
        return float(values[0])
    return values[0] + (values[1] - values[0]) * (position - low)


def speed_to_lead(*, period: Period, rep_id: int | None = None) -> SpeedToLead:
    """Business hours from assignment to the owner's first touch, for the response clocks
    started in the period that were touched (on time or late; still untouched ones are not)."""
    qs = _response_clocks(period=period, rep_id=rep_id).filter(
        met_at__isnull=False, business_seconds__isnull=False
    )
    n = qs.count()
    if not n:
        return SpeedToLead(responded=0, median_hours=None, p90_hours=None)
    return SpeedToLead(
        responded=n,
        median_hours=round(_percentile(qs, "business_seconds", n, 0.5) / 3600, 2),
        p90_hours=round(_percentile(qs, "business_seconds", n, 0.9) / 3600, 2),
    )


@dataclass(frozen=True, slots=True)
class SpeedRow:
    """Speed to lead and SLA attainment of one rep's or one source's response clocks."""

    key_id: int | None
    name: str
    started: int  # response clocks started in the period, cancelled ones left out
    met: int  # first touch by the due time
    responded: int  # touched (on time or late)
    median_hours: float | None  # business hours to the first touch
    p90_hours: float | None

    @property
    def attainment(self) -> float | None:
        """Met on time / started, percent."""
        return round(100 * self.met / self.started, 1) if self.started else None


class _PercentileSeconds(Aggregate):
    """PostgreSQL's percentile_cont of the touched clocks' business seconds."""

    template = "percentile_cont(%(share)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, share: float, **extra):
        super().__init__(expression, share=share, **extra)


SPEED_GROUPS = {
    "rep": ("owner_id", ("owner__first_name", "owner__last_name", "owner__username")),
    "source": ("lead__source_id", ("lead__source__name",)),
}


def speed_to_lead_by(
    *,
    period: Period,
    group_by: str = "rep",
    rep_id: int | None = None,
    source_id: int | None = None,
) -> list[SpeedRow]:
    """Speed to lead (median and 90th percentile in business hours, over the touched clocks)
    and attainment of the response clocks started in the period, by owner or by the lead's
    source; slowest median first. One query on PostgreSQL; elsewhere one plus two per group."""
    if group_by not in SPEED_GROUPS:
        raise ValueError("group_by must be 'rep' or 'source'")
    key, names = SPEED_GROUPS[group_by]
    qs = _response_clocks(period=period, rep_id=rep_id).exclude(status=ClockStatus.CANCELLED)
    if source_id is not None:
        qs = qs.filter(lead__source_id=source_id)
    touched = Q(met_at__isnull=False, business_seconds__isnull=False)
    counts = {
        "started": Count("id"),
        "met": Count("id", filter=Q(status=ClockStatus.MET)),
        "responded": Count("id", filter=touched),
    }
    postgres = connection.vendor == "postgresql"
    if postgres:
        counts["p50"] = _PercentileSeconds("business_seconds", 0.5, filter=touched)
        counts["p90"] = _PercentileSeconds("business_seconds", 0.9, filter=touched)
    rows = []
    for r in qs.values(key, *names).annotate(**counts).order_by():
        if postgres:
            p50, p90 = r["p50"], r["p90"]
        elif r["responded"]:
            group = qs.filter(touched, **{key: r[key]})
            p50 = _percentile(group, "business_seconds", r["responded"], 0.5)
            p90 = _percentile(group, "business_seconds", r["responded"], 0.9)
        else:
            p50 = p90 = None
        if group_by == "rep":
            name = _rep_name(*(r[n] for n in names))
        else:
            name = r[names[0]] or "Unknown source"
        rows.append(
            SpeedRow(
                key_id=r[key],
                name=name,
                started=r["started"],
                met=r["met"],
                responded=r["responded"],
                median_hours=round(p50 / 3600, 2) if p50 is not None else None,
                p90_hours=round(p90 / 3600, 2) if p90 is not None else None,
            )
        )
    rows.sort(key=lambda r: (r.median_hours is None, -(r.median_hours or 0), r.name))
    return rows


def _rep_name(first: str | None, last: str | None, username: str | None) -> str:
    if username is None:
        return "Unassigned"
    return f"{first or ''} {last or ''}".strip() or username


@dataclass(frozen=True, slots=True)
class RepBreaches:
    rep_id: int | None
    rep: str
    response: int
    decision: int

    @property
    def total(self) -> int:
        return self.response + self.decision


def sla_breaches_by_rep(*, period: Period, rep_id: int | None = None) -> list[RepBreaches]:
    """Breached clocks (response and decision) started in the period, by owner, most first."""
    qs = SlaClock.objects.filter(
        status=ClockStatus.BREACHED, started_at__gte=period.start, started_at__lt=period.end
    )
    if rep_id is not None:
        qs = qs.filter(owner_id=rep_id)
    rows = (
        qs.values("owner_id", "owner__first_name", "owner__last_name", "owner__username")
        .annotate(
            response=Count("id", filter=Q(kind=ClockKind.RESPONSE)),
            decision=Count("id", filter=Q(kind=ClockKind.DECISION)),
            total=Count("id"),
        )
        .order_by("-total", "owner__username")
    )
    return [
        RepBreaches(
            rep_id=r["owner_id"],
            rep=_rep_name(r["owner__first_name"], r["owner__last_name"], r["owner__username"]),
            response=r["response"],
            decision=r["decision"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class RepOpenClocks:
    rep_id: int | None
    rep: str
    open: int
    overdue: int


def sla_clocks_open(*, at: datetime, rep_id: int | None = None) -> list[RepOpenClocks]:
    """Clocks running at `at` (started by then, not ended by then), by owner, with how many
    were past their due time then; most overdue first."""
    qs = SlaClock.objects.filter(started_at__lte=at).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=at)
    )
    if rep_id is not None:
        qs = qs.filter(owner_id=rep_id)
    rows = (
        qs.values("owner_id", "owner__first_name", "owner__last_name", "owner__username")
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(due_at__lte=at)))
        .order_by("-overdue", "-open", "owner__username")
    )
    return [
        RepOpenClocks(
            rep_id=r["owner_id"],
            rep=_rep_name(r["owner__first_name"], r["owner__last_name"], r["owner__username"]),
            open=r["open"],
            overdue=r["overdue"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Followup:
    accepted: int  # acceptances in the period
    due: int  # their follow-up window has ended by `now`
    kept: int  # due, with at least the attempts committed
    open: int  # window not ended yet
    kept_so_far: int  # open, with the attempts committed already
    share: float | None  # kept / due, percent
    median_attempts: float | None  # over the due ones


def followup_attainment(
    *, period: Period, attempts: int, days: int, now: datetime, rep_id: int | None = None
) -> Followup:
    """Acceptances in the period (by `rep_id`, the rep who accepted, when given) and how many
    had `attempts` sales attempts within `days` of the acceptance; one query."""
    window = timedelta(days=days)
    tries = (
        LeadEvent.objects.filter(
            type=EventType.TOUCHPOINT_RECORDED,
            lead_id=OuterRef("lead_id"),
            payload__sales=True,
            payload__kind__in=sorted(FIRST_TOUCH_KINDS),
            occurred_at__gte=OuterRef("occurred_at"),
            occurred_at__lt=ExpressionWrapper(
                OuterRef("occurred_at") + window, output_field=DateTimeField()
            ),
        )
        # an open window is counted up to now, not beyond
        .filter(occurred_at__lt=now)
        .order_by()
        .values("lead_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    qs = LeadEvent.objects.filter(
        type=EventType.LEAD_ACCEPTED,
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
        lead_id__isnull=False,
    )
    if rep_id is not None:
        qs = qs.filter(actor_id=rep_id)
    rows = list(
        qs.order_by()
        .annotate(n=Coalesce(Subquery(tries, output_field=IntegerField()), 0))
        .values_list("occurred_at", "n")
    )
    due = [n for at, n in rows if at + window <= now]
    still_open = [n for at, n in rows if at + window > now]
    kept = sum(1 for n in due if n >= attempts)
    return Followup(
        accepted=len(rows),
        due=len(due),
        kept=kept,
        open=len(still_open),
        kept_so_far=sum(1 for n in still_open if n >= attempts),
        share=round(100 * kept / len(due), 1) if due else None,
        median_attempts=float(statistics.median(due)) if due else None,
    )
