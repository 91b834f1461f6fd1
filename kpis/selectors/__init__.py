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

Rollup: the figures that pair one event with another (an MQL and its decision, a lead and the
furthest stage it reached, a stay and its end, a win and the opportunity before it) read the
stage-stay rollup (kpis.models.StageStay, kept from the event log by the outbox: kpis.rollups),
which holds those pairs ready; the counts of one kind of event read the log itself.
"""

from kpis.selectors.marketing import (
    Acceptance,
    Feedback,
    Pipeline,
    RejectionReasons,
    WonCustomer,
    mql_acceptance,
    mql_entries,
    mql_feedback,
    mqls_delivered,
    pipeline_created,
    rejection_reasons_by_source,
    won_customers,
)
from kpis.selectors.periods import (
    Period,
    days_in_month,
    iso_week_label,
    iso_week_of,
    iso_week_period,
    month_period,
    months_back,
    weeks_back,
)
from kpis.selectors.sales import (
    Followup,
    RepBreaches,
    RepOpenClocks,
    ResponseAttainment,
    SpeedRow,
    SpeedToLead,
    followup_attainment,
    sla_breaches_by_rep,
    sla_clocks_open,
    sla_response_attainment,
    speed_to_lead,
    speed_to_lead_by,
)

__all__ = [
    "Acceptance",
    "Feedback",
    "Followup",
    "Period",
    "Pipeline",
    "RejectionReasons",
    "RepBreaches",
    "RepOpenClocks",
    "ResponseAttainment",
    "SpeedRow",
    "SpeedToLead",
    "WonCustomer",
    "days_in_month",
    "followup_attainment",
    "iso_week_label",
    "iso_week_of",
    "iso_week_period",
    "month_period",
    "months_back",
    "mql_acceptance",
    "mql_entries",
    "mql_feedback",
    "mqls_delivered",
    "pipeline_created",
    "rejection_reasons_by_source",
    "sla_breaches_by_rep",
    "sla_clocks_open",
    "sla_response_attainment",
    "speed_to_lead",
    "speed_to_lead_by",
    "weeks_back",
    "won_customers",
]

# --- the funnel, velocity, attribution and goals (issue 11) ---
from kpis.selectors.funnel import Funnel, FunnelStep, lead_funnel  # noqa: E402

__all__ += ["Funnel", "FunnelStep", "lead_funnel"]
from kpis.selectors.velocity import Velocity, VelocityRow, sales_velocity  # noqa: E402

__all__ += ["Velocity", "VelocityRow", "sales_velocity"]
from kpis.selectors.attribution import (  # noqa: E402
    Attribution,
    Credit,
    pipeline_attribution,
    revenue_attribution,
)

__all__ += ["Attribution", "Credit", "pipeline_attribution", "revenue_attribution"]
from kpis.selectors.goals import (  # noqa: E402
    METRICS,
    GoalProgress,
    GoalsBoard,
    TrendPoint,
    goal_progress,
    goals_board,
)

__all__ += ["METRICS", "GoalProgress", "GoalsBoard", "TrendPoint", "goal_progress", "goals_board"]
