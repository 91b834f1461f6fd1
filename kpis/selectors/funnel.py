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

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    QuerySet,
)

from kpis.models import TIMED_STAGES as ROLLUP_TIMED_STAGES
from kpis.rollups.replay import FUNNEL_STAGES as ROLLUP_FUNNEL_STAGES
from kpis.rollups.replay import LEAD_ROW
from kpis.selectors.periods import Period
from kpis.selectors.stays import cohort
from leads.models import Stage

# the funnel's stages after "lead" (the cohort itself), in order (kpis.rollups ranks them)
FUNNEL_STAGES = tuple(Stage(code) for code in ROLLUP_FUNNEL_STAGES)
# the stages whose time is measured (won is final), in the order of the rollup's index on them
TIMED_STAGES = tuple(Stage(code) for code in ROLLUP_TIMED_STAGES)


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
        rows = stays.values("stage").annotate(n=Count("id"), median=MedianSeconds("duration"))
        rows = list(rows.values_list("stage", "n", "median"))
        return {s: n for s, n, _ in rows}, {s: round(m / 3600, 2) for s, n, m in rows if n}
    measured = dict(stays.values("stage").annotate(n=Count("id")).values_list("stage", "n"))
    medians = {
        stage: _median_hours(stays.filter(stage=stage), n) for stage, n in measured.items() if n
    }
    return measured, medians


def _median_hours(qs: QuerySet, n: int) -> float:
    """The median of the `duration` annotation (mean of the two middle ones for an even n),
    read with ORDER BY ... OFFSET."""
    low = (n - 1) // 2
    values = list(qs.order_by("duration").values_list("duration", flat=True)[low : low + 2])
    middle = values[0] if n % 2 else values[0] + (values[1] - values[0]) / 2
    return round(middle / timedelta(hours=1), 2)


def lead_funnel(
    *,
    period: Period,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
    until: datetime | None = None,
) -> Funnel:
    """The period's new leads, how far they got, stage to stage (see the module doc), read from
    the stage-stay rollup. Queries: 2 on PostgreSQL; elsewhere 2 plus 1 per timed stage with
    ended stays."""
    stays = cohort(period, source_id=source_id, campaign_id=campaign_id, rep_id=rep_id)
    if until is not None:
        stays = stays.filter(entered_at__lt=until)
    if until is None:
        # the creation rows carry how far each lead got
        furthest = dict(
            stays.filter(stage=LEAD_ROW)
            .values("furthest")
            .annotate(n=Count("id"))
            .values_list("furthest", "n")
        )
        counts = [
            sum(n for rank, n in furthest.items() if rank >= k)
            for k in range(len(FUNNEL_STAGES) + 1)
        ]
    else:
        # as of `until`: the cohort's leads with a stay entered before it in stage k or later
        reached = stays.aggregate(
            leads=Count("id", filter=Q(stage=LEAD_ROW)),
            **{
                f"s{k}": Count("lead_id", distinct=True, filter=Q(stage__in=FUNNEL_STAGES[k - 1 :]))
                for k in range(1, len(FUNNEL_STAGES) + 1)
            },
        )
        counts = [reached["leads"], *(reached[f"s{k}"] for k in range(1, len(FUNNEL_STAGES) + 1))]
    ended = stays.filter(stage__in=TIMED_STAGES, left_at__isnull=False)
    if until is not None:
        ended = ended.filter(left_at__lt=until)
    ended = ended.annotate(
        duration=ExpressionWrapper(F("left_at") - F("entered_at"), DurationField())
    )
    measured, medians = _medians(ended)
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
