"""Marketing's figures, from the lead event log by cohort (see the package docstring)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from kpis.selectors.periods import Period
from leads.models import EventType, LeadEvent, Reason, ReasonKind, Stage


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
