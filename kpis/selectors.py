"""Shared KPIs: one selector per figure, for the pages, the API and the weekly report alike.

Every figure is read from the lead event log (or the SLA clocks derived from it) for a `Period`
(UTC instants, start inclusive, end exclusive; `iso_week_period` and `month_period` cut them in a
time zone, normally the agreement's calendar's). Queries are set-based: a figure costs a fixed
number of queries whatever the number of leads.

Cohorts (marketing's figures): an MQL counts in the period in which it entered the stage (its
`lead.mql` event); each entry is one MQL, so a recycled lead that qualifies again counts again.
Its decision - accepted (`lead.accepted`), rejected (`lead.rejected`, or `lead.recycled` straight
from MQL: a rejection whose reason recycles) - counts in the MQL's period whenever it is made:
an MQL of W47 accepted in W48 counts as accepted in W47. The acceptance rate is accepted / decided
*by now* (undecided MQLs are shown apart, not counted as rejected), so a recent period's rate can
still move. Pipeline created counts in the period a lead entered "opportunity", with the deal value
of that move. Won customers count in the period of their `lead.won` event.

Cohort (sales' follow-up): an acceptance counts in the period of its `lead.accepted` event (a lead
accepted twice counts twice), with the sales attempts (`touchpoint.recorded`, sales, a call, sales
email or meeting) on the lead in the D days from that instant; it is due once those D days are over.

Filters `source_id` and `campaign_id` are the lead's current source and campaign; events of a
merged duplicate (whose row is gone) have neither and drop out when a filter is given.
"""

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from alignment.lib.errors import DomainError
from leads.models import FIRST_TOUCH_KINDS, EventType, LeadEvent, Reason, ReasonKind, Stage
from sla.clocks.models import ClockKind, ClockStatus, SlaClock

# --- periods -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC, named by its ISO week ("2026-W47") or month ("2026-11")."""

    start: datetime
    end: datetime
    label: str
    kind: str  # "week" or "month"
    timezone: str

    @property
    def first_day(self) -> date:
        return self.start.astimezone(ZoneInfo(self.timezone)).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(ZoneInfo(self.timezone)) - timedelta(seconds=1)).date()

    def until(self, at: datetime) -> "Period":
        """The period cut at `at` (a week still in progress is counted up to now)."""
        return Period(
            self.start, min(self.end, max(self.start, at)), self.label, self.kind, self.timezone
        )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def iso_week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def iso_week_period(week: str, *, tz: str) -> Period:
    """ISO week "2026-W47": Monday 00:00 to the next Monday 00:00 in `tz`."""
    try:
        year, number = week.strip().upper().split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise DomainError(
            f"{week!r} is not an ISO week: write it like 2026-W47 (year, W, week 01-53).",
            field="week",
        ) from None
    zone = ZoneInfo(tz)
    return Period(
        _midnight(monday, zone),
        _midnight(monday + timedelta(days=7), zone),
        iso_week_label(monday),
        "week",
        tz,
    )


def iso_week_of(at: datetime, *, tz: str) -> str:
    return iso_week_label(at.astimezone(ZoneInfo(tz)).date())


def weeks_back(week: str, count: int) -> list[str]:
    """`count` ISO weeks ending with `week`, oldest first."""
    monday = date.fromisocalendar(*(int(p) for p in week.split("-W")), 1)
    return [iso_week_label(monday - timedelta(weeks=n)) for n in range(count - 1, -1, -1)]


def month_period(month: str, *, tz: str) -> Period:
    """Calendar month "2026-11" in `tz`."""
    try:
        year, number = (int(p) for p in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise DomainError(f"{month!r} is not a month: write it like 2026-11.") from None
    following = date(year + number // 12, number % 12 + 1, 1)
    zone = ZoneInfo(tz)
    return Period(_midnight(first, zone), _midnight(following, zone), month, "month", tz)


def months_back(month: str, count: int) -> list[str]:
    year, number = (int(p) for p in month.split("-"))
    index = year * 12 + number - 1
    return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def days_in_month(day: date) -> int:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return (following - date(day.year, day.month, 1)).days


# --- marketing: MQLs, acceptance, rejections, pipeline, wins -----------------------------------


def _lead_filters(qs: QuerySet, source_id: int | None, campaign_id: int | None) -> QuerySet:
    if source_id is not None:
        qs = qs.filter(lead__source_id=source_id)
    if campaign_id is not None:
        qs = qs.filter(lead__campaign_id=campaign_id)
    return qs


def mql_entries(
    *, period: Period, source_id: int | None = None, campaign_id: int | None = None
) -> QuerySet[LeadEvent]:
    """The `lead.mql` events of the period: the cohort of MQLs delivered."""
    qs = LeadEvent.objects.filter(
        type=EventType.LEAD_MQL,
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
        lead_id__isnull=False,
    )
    return _lead_filters(qs, source_id, campaign_id)


def mqls_delivered(
    *, period: Period, source_id: int | None = None, campaign_id: int | None = None
) -> int:
    """MQLs delivered (= received by sales): entries into MQL in the period."""
    return mql_entries(period=period, source_id=source_id, campaign_id=campaign_id).count()


# a decision on an MQL: accepted, rejected, or recycled straight from MQL (a recycling reject)
_DECISION = (
    Q(type=EventType.LEAD_ACCEPTED)
    | Q(type=EventType.LEAD_REJECTED)
    | Q(type=EventType.LEAD_RECYCLED, payload__from=Stage.MQL)
)


def _decisions_of_cohort(
    *, period: Period, source_id: int | None, campaign_id: int | None
) -> QuerySet[LeadEvent]:
    """Decision events whose MQL entry (the lead's latest `lead.mql` at or before the decision)
    falls in the period. A decision is only possible from MQL, so each decides one entry."""
    entry = LeadEvent.objects.filter(
        type=EventType.LEAD_MQL,
        lead_id=OuterRef("lead_id"),
        occurred_at__lte=OuterRef("occurred_at"),
    ).order_by("-occurred_at", "-id")
    qs = (
        LeadEvent.objects.filter(_DECISION, occurred_at__gte=period.start, lead_id__isnull=False)
        .annotate(mql_at=Subquery(entry.values("occurred_at")[:1], output_field=DateTimeField()))
        .filter(mql_at__gte=period.start, mql_at__lt=period.end)
    )
    return _lead_filters(qs, source_id, campaign_id)


@dataclass(frozen=True, slots=True)
class Acceptance:
    mqls: int
    accepted: int
    rejected: int
    undecided: int
    # accepted / decided so far, in percent; None when nothing is decided yet
    rate: float | None


def mql_acceptance(
    *, period: Period, source_id: int | None = None, campaign_id: int | None = None
) -> Acceptance:
    """The period's MQL cohort and what sales decided on it, whenever (see the module doc)."""
    mqls = mqls_delivered(period=period, source_id=source_id, campaign_id=campaign_id)
    counts = _decisions_of_cohort(
        period=period, source_id=source_id, campaign_id=campaign_id
    ).aggregate(
        accepted=Count("id", filter=Q(type=EventType.LEAD_ACCEPTED)),
        decided=Count("id"),
    )
    accepted, decided = counts["accepted"], counts["decided"]
    return Acceptance(
        mqls=mqls,
        accepted=accepted,
        rejected=decided - accepted,
        undecided=max(mqls - decided, 0),
        rate=round(100 * accepted / decided, 1) if decided else None,
    )


@dataclass(frozen=True, slots=True)
class RejectionReasons:
    source: str
    reason_code: str
    reason: str
    count: int


def rejection_reasons_by_source(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    limit: int | None = None,
) -> list[RejectionReasons]:
    """Why sales rejected the period's MQL cohort, by the lead's source, most frequent first."""
    rows = (
        _decisions_of_cohort(period=period, source_id=source_id, campaign_id=campaign_id)
        .exclude(type=EventType.LEAD_ACCEPTED)
        .values("lead__source__name", reason_code=KT("payload__reason"))
        .annotate(n=Count("id"))
        .order_by("-n", "lead__source__name", "reason_code")
    )
    if limit is not None:
        rows = rows[:limit]
    rows = list(rows)
    labels = dict(
        Reason.objects.filter(
            kind__in=(ReasonKind.REJECT, ReasonKind.RECYCLE),
            code__in={r["reason_code"] for r in rows if r["reason_code"]},
        )
        # a code of both kinds (not_ready) reads as the rejection's label: later rows win
        .order_by("kind")
        .values_list("code", "label")
    )
    return [
        RejectionReasons(
            source=r["lead__source__name"] or "Unknown source",
            reason_code=r["reason_code"] or "",
            reason=labels.get(r["reason_code"], r["reason_code"] or "No reason given"),
            count=r["n"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Pipeline:
    opportunities: int
    value: Decimal


def pipeline_created(
    *, period: Period, source_id: int | None = None, campaign_id: int | None = None
) -> Pipeline:
    """Entries into "opportunity" in the period and the sum of their deal values."""
    qs = LeadEvent.objects.filter(
        type=EventType.LEAD_STAGE_CHANGED,
        payload__to=Stage.OPPORTUNITY,
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
        lead_id__isnull=False,
    )
    totals = _lead_filters(qs, source_id, campaign_id).aggregate(
        n=Count("id"),
        value=Sum(Cast(KT("payload__deal_value"), DecimalField(max_digits=14, decimal_places=2))),
    )
    value = Decimal(str(totals["value"] or 0)).quantize(Decimal("0.01"))
    return Pipeline(opportunities=totals["n"], value=value)


@dataclass(frozen=True, slots=True)
class WonCustomer:
    lead_id: int
    customer: str
    contact: str
    deal_value: Decimal | None
    source: str
    rep: str
    won_at: datetime


def won_customers(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    limit: int = 20,
) -> tuple[int, Decimal, list[WonCustomer]]:
    """Customers won in the period: how many, their total deal value and the first `limit`."""
    qs = _lead_filters(
        LeadEvent.objects.filter(
            type=EventType.LEAD_WON,
            occurred_at__gte=period.start,
            occurred_at__lt=period.end,
            lead__isnull=False,
        ),
        source_id,
        campaign_id,
    )
    value_field = DecimalField(max_digits=14, decimal_places=2)
    totals = qs.aggregate(n=Count("id"), value=Sum(Cast(KT("payload__deal_value"), value_field)))
    rows = qs.select_related("lead__source", "lead__owner").order_by("occurred_at", "id")[:limit]
    customers = []
    for event in rows:
        lead = event.lead
        raw = (event.payload or {}).get("deal_value")
        customers.append(
            WonCustomer(
                lead_id=lead.pk,
                customer=lead.company or lead.display_name,
                contact=lead.display_name,
                deal_value=Decimal(raw) if raw not in (None, "") else lead.deal_value,
                source=lead.source.name if lead.source_id else "",
                rep=str(lead.owner) if lead.owner_id else "",
                won_at=event.occurred_at,
            )
        )
    total = Decimal(str(totals["value"] or 0)).quantize(Decimal("0.01"))
    return totals["n"], total, customers


# --- sales: response within the SLA, speed-to-lead, breaches, open clocks, follow-up ---------


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
