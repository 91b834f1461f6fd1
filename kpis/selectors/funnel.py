"""The funnel: leads -> MQL -> SAL -> SQL -> opportunity -> won, for a cohort of new leads.

Cohort: the leads whose `lead.created` event falls in the period (a lead enters the funnel once,
when it is created). Each is followed to the furthest funnel stage it reached at any time after
(or up to `until`, when given: "as of the period end" is `until=period.end`), so a recent period's
funnel still fills as its leads move on, as the MQL acceptance rate does.

A lead counts once per stage however often it entered it: a lead that became an MQL, was
recycled and became an MQL again is one MQL here (marketing's `mqls_delivered` counts entries).
A lead that reached a later stage counts as having reached every earlier one (the lifecycle does
not skip SAL or SQL, but an imported history may go from MQL straight to won), so no conversion
passes 100%.

Time in stage: for every stay of a cohort lead in MQL, SAL, SQL and opportunity that has ended
(the lead moved on, or out: rejected, recycled, lost), the calendar hours from entering the stage
to leaving it; the median over those stays. A stay still going on is not counted.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)

from kpis.selectors.marketing import _lead_filters
from kpis.selectors.periods import Period
from leads.models import EventType, LeadEvent, Stage

# the funnel's stages after "lead" (the cohort itself), in order
FUNNEL_STAGES = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.WON)
# the stages whose time is measured (won is final)
TIMED_STAGES = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY)


@contextmanager
def without_jit() -> Iterator[None]:
    """Run the block's queries in one transaction with PostgreSQL's JIT off: a correlated
    lookup per event is estimated expensive enough for JIT, whose compilation (0.2-0.6 s) costs
    far more than the few thousand index lookups it would speed up."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


class InSubquery(Func):
    """`field IN (subquery)`; on PostgreSQL `field = ANY(ARRAY(subquery))`, which the planner
    answers with one index lookup per id of the (small) subquery instead of hashing it against
    a scan of every matching row of the big table."""

    arity = 2
    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        (lhs, lhs_params), (rhs, rhs_params) = (
            compiler.compile(e) for e in self.source_expressions
        )
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler, connection, **extra):
        (lhs, lhs_params), (rhs, rhs_params) = (
            compiler.compile(e) for e in self.source_expressions
        )
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def lead_filters(
    qs: QuerySet,
    *,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> QuerySet:
    """Events of leads with this current source, campaign and owner (each filter optional)."""
    qs = _lead_filters(qs, source_id, campaign_id)
    return qs.filter(lead__owner_id=rep_id) if rep_id is not None else qs


def _cohort_events(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> QuerySet[LeadEvent]:
    """The `lead.created` events of the period: one per lead of the cohort."""
    qs = LeadEvent.objects.filter(
        type=EventType.LEAD_CREATED,
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
        lead_id__isnull=False,
    )
    return lead_filters(qs, source_id=source_id, campaign_id=campaign_id, rep_id=rep_id)


def _furthest(*, period: Period, filters: dict, until: datetime | None) -> QuerySet:
    """The cohort's leads, each with the rank of the furthest funnel stage it reached (1 = MQL
    ... 5 = won; null: none), read by one index lookup per lead (leadevent_lead_time) rather
    than a join with every move ever made."""
    rank = Case(
        *(When(payload__to=stage, then=Value(i + 1)) for i, stage in enumerate(FUNNEL_STAGES)),
        default=Value(0),
        output_field=IntegerField(),
    )
    moves = LeadEvent.objects.filter(type=EventType.LEAD_STAGE_CHANGED, lead_id=OuterRef("lead_id"))
    if until is not None:
        moves = moves.filter(occurred_at__lt=until)
    best = moves.values("lead_id").annotate(best=Max(rank)).values("best")
    return _cohort_events(period=period, **filters).annotate(
        furthest=Subquery(best, output_field=IntegerField())
    )


def cohort_lead_ids(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> QuerySet:
    """The ids of the leads created in the period (a subquery, never fetched)."""
    return _cohort_events(
        period=period, source_id=source_id, campaign_id=campaign_id, rep_id=rep_id
    ).values("lead_id")


@dataclass(frozen=True, slots=True)
class FunnelStep:
    stage: str  # "lead" or a Stage code
    label: str
    reached: int  # cohort leads that got this far (or further)
    # reached / the previous step's reached, percent (None for the first step or an empty one)
    conversion: float | None
    # reached here but got no further
    dropped: int
    # median calendar hours in this stage, over the stays that ended; None when none did
    median_hours_in_stage: float | None
    stays_measured: int


@dataclass(frozen=True, slots=True)
class Funnel:
    leads: int
    steps: tuple[FunnelStep, ...]
    # won / leads, percent
    overall: float | None


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


class MedianSeconds(Aggregate):
    """PostgreSQL's median of a duration, in seconds (interpolated as percentile_cont does)."""

    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM %(expressions)s))"
    output_field = FloatField()


def _medians(stays: QuerySet) -> tuple[dict[str, int], dict[str, float]]:
    """Stays measured and median hours by stage: one GROUP BY on PostgreSQL; elsewhere the
    count, then one ORDER BY ... OFFSET read per stage."""
    if connection.vendor == "postgresql":
        rows = stays.values("stage_from").annotate(n=Count("id"), median=MedianSeconds("duration"))
        rows = list(rows.values_list("stage_from", "n", "median"))
        return {s: n for s, n, _ in rows}, {s: round(m / 3600, 2) for s, n, m in rows if n}
    measured = dict(
        stays.values("stage_from").annotate(n=Count("id")).values_list("stage_from", "n")
    )
    medians = {
        stage: _median_hours(stays.filter(payload__from=stage), n)
        for stage, n in measured.items()
        if n
    }
    return measured, medians


def _median_hours(qs: QuerySet, n: int) -> float:
    """The median of the `duration` annotation (mean of the two middle ones for an even n),
    read with ORDER BY ... OFFSET."""
    low = (n - 1) // 2
    values = list(qs.order_by("duration").values_list("duration", flat=True)[low : low + 2])
    middle = values[0] if n % 2 else values[0] + (values[1] - values[0]) / 2
    return round(middle / timedelta(hours=1), 2)


def _stays(cohort: QuerySet, *, period: Period, until: datetime | None) -> QuerySet:
    """The ended stays of the cohort's leads in the timed stages, each with its `duration`:
    from the move out of a stage back to the latest move into it, read lead by lead of the
    cohort (leadevent_lead_time)."""
    entered = LeadEvent.objects.filter(
        type=EventType.LEAD_STAGE_CHANGED,
        lead_id=OuterRef("lead_id"),
        payload__to=OuterRef("stage_from"),
        occurred_at__lte=OuterRef("occurred_at"),
    ).order_by("-occurred_at", "-id")
    qs = LeadEvent.objects.filter(
        InSubquery(F("lead_id"), Subquery(cohort)),
        type=EventType.LEAD_STAGE_CHANGED,
        payload__from__in=list(TIMED_STAGES),
        occurred_at__gte=period.start,
    )
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    return (
        qs.annotate(stage_from=F("payload__from"))
        .annotate(
            entered_at=Subquery(entered.values("occurred_at")[:1], output_field=DateTimeField())
        )
        .filter(entered_at__isnull=False)
        .annotate(duration=ExpressionWrapper(F("occurred_at") - F("entered_at"), DurationField()))
    )


def lead_funnel(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
    until: datetime | None = None,
) -> Funnel:
    """The period's new leads, how far they got, stage to stage (see the module doc).
    Queries: 2 on PostgreSQL; elsewhere 2 plus 1 per timed stage with ended stays."""
    filters = {"source_id": source_id, "campaign_id": campaign_id, "rep_id": rep_id}
    cohort = cohort_lead_ids(period=period, **filters)
    stays = _stays(cohort, period=period, until=until)
    with without_jit():
        furthest = dict(
            _furthest(period=period, filters=filters, until=until)
            .values("furthest")
            .annotate(n=Count("id"))
            .values_list("furthest", "n")
        )
        measured, medians = _medians(stays)
    # reached stage k: the leads whose furthest stage is k or beyond
    counts = [
        sum(n for rank, n in furthest.items() if (rank or 0) >= k)
        for k in range(len(FUNNEL_STAGES) + 1)
    ]
    leads = counts[0]
    codes = ["lead", *FUNNEL_STAGES]
    steps = []
    for i, code in enumerate(codes):
        following = counts[i + 1] if i + 1 < len(counts) else counts[i]
        steps.append(
            FunnelStep(
                stage=str(code),
                label="Leads" if code == "lead" else Stage(code).label,
                reached=counts[i],
                conversion=_share(counts[i], counts[i - 1]) if i else None,
                dropped=counts[i] - following,
                median_hours_in_stage=medians.get(code),
                stays_measured=measured.get(code, 0),
            )
        )
    return Funnel(leads=leads, steps=tuple(steps), overall=_share(counts[-1], leads))
