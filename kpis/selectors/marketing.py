"""Marketing's figures, from the lead event log by cohort (see the package docstring)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from kpis.selectors.periods import Period
from kpis.selectors.stays import entered, names
from leads.models import Campaign, EventType, LeadEvent, Reason, ReasonKind, Source, Stage


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


# how an MQL stay ends when sales decides it: accepted (to SAL), rejected, or recycled straight
# from MQL (a rejection whose reason recycles)
ACCEPTED_TO = Stage.SAL
REJECTED_TO = (Stage.REJECTED, Stage.RECYCLED)
DECIDED_TO = (ACCEPTED_TO, *REJECTED_TO)


def _mql_stays(*, period: Period, source_id: int | None, campaign_id: int | None) -> QuerySet:
    """The period's MQL entries (the rollup's MQL stays), each with how it ended."""
    return entered(Stage.MQL, period, source_id=source_id, campaign_id=campaign_id)


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
    """The period's MQL cohort and what sales decided on it, whenever (see the module doc).
    One query, on the stage-stay rollup."""
    counts = _mql_stays(period=period, source_id=source_id, campaign_id=campaign_id).aggregate(
        mqls=Count("id"),
        accepted=Count("id", filter=Q(exit_to=ACCEPTED_TO)),
        decided=Count("id", filter=Q(exit_to__in=DECIDED_TO)),
    )
    mqls, accepted, decided = counts["mqls"], counts["accepted"], counts["decided"]
    return Acceptance(
        mqls=mqls,
        accepted=accepted,
        rejected=decided - accepted,
        undecided=max(mqls - decided, 0),
        rate=round(100 * accepted / decided, 1) if decided else None,
    )


def _reason_labels(codes: set[str]) -> dict[str, str]:
    return dict(
        Reason.objects.filter(kind__in=(ReasonKind.REJECT, ReasonKind.RECYCLE), code__in=codes)
        # a code of both kinds (not_ready) reads as the rejection's label: later rows win
        .order_by("kind")
        .values_list("code", "label")
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
        _mql_stays(period=period, source_id=source_id, campaign_id=campaign_id)
        .filter(exit_to__in=REJECTED_TO)
        .values("source_id", "exit_reason")
        .annotate(n=Count("id"))
    )
    sources = names(Source, {r["source_id"] for r in rows})
    rows = sorted(
        rows,
        key=lambda r: (-r["n"], sources.get(r["source_id"], "Unknown source"), r["exit_reason"]),
    )
    if limit is not None:
        rows = rows[:limit]
    labels = _reason_labels({r["exit_reason"] for r in rows if r["exit_reason"]})
    return [
        RejectionReasons(
            source=sources.get(r["source_id"]) or "Unknown source",
            reason_code=r["exit_reason"],
            reason=labels.get(r["exit_reason"], r["exit_reason"] or "No reason given"),
            count=r["n"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Feedback:
    """Sales' decisions on one source's or campaign's MQLs of the period."""

    name: str
    mqls: int
    accepted: int
    rejected: int  # rejected, plus recycled straight from MQL
    undecided: int
    # accepted / decided, percent; None while nothing is decided
    acceptance_rate: float | None
    # (reason label, count), most frequent first
    reasons: tuple[tuple[str, int], ...]


FEEDBACK_GROUPS = {"source": ("source_id", Source), "campaign": ("campaign_id", Campaign)}


def mql_feedback(
    *,
    period: Period,
    group_by: str = "source",
    source_id: int | None = None,
    campaign_id: int | None = None,
) -> list[Feedback]:
    """The period's MQL cohort by source or campaign: how many sales accepted and rejected (by
    now) and why they rejected them; lowest acceptance first. Two queries."""
    if group_by not in FEEDBACK_GROUPS:
        raise ValueError("group_by must be 'source' or 'campaign'")
    key, model = FEEDBACK_GROUPS[group_by]
    stays = _mql_stays(period=period, source_id=source_id, campaign_id=campaign_id)
    groups = stays.values(key).annotate(
        mqls=Count("id"),
        accepted=Count("id", filter=Q(exit_to=ACCEPTED_TO)),
        rejected=Count("id", filter=Q(exit_to__in=REJECTED_TO)),
    )
    reasons = (
        stays.filter(exit_to__in=REJECTED_TO)
        .values(key, "exit_reason")
        .annotate(n=Count("id"))
        .order_by("-n", "exit_reason")
    )
    reasons = list(reasons)
    labels = _reason_labels({r["exit_reason"] for r in reasons if r["exit_reason"]})
    groups = list(groups.order_by())
    titles = names(model, {g[key] for g in groups})
    by_group: dict[int | None, list[tuple[str, int]]] = {}
    for r in reasons:
        label = labels.get(r["exit_reason"], r["exit_reason"] or "No reason given")
        by_group.setdefault(r[key], []).append((label, r["n"]))
    none = "Unknown source" if group_by == "source" else "No campaign"
    rows = []
    for g in groups:
        decided = g["accepted"] + g["rejected"]
        rows.append(
            Feedback(
                name=titles.get(g[key]) or none,
                mqls=g["mqls"],
                accepted=g["accepted"],
                rejected=g["rejected"],
                undecided=g["mqls"] - decided,
                acceptance_rate=round(100 * g["accepted"] / decided, 1) if decided else None,
                reasons=tuple(by_group.get(g[key], ())),
            )
        )
    rows.sort(key=lambda r: (r.acceptance_rate is None, r.acceptance_rate or 0, r.name))
    return rows


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
