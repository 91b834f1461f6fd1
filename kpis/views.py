"""The KPI page: every figure read from its selector in kpis.selectors (never counted a second
way), for one week or month in the agreement's time zone, filtered by source, campaign and rep.
Each figure is a table (the counts behind each ratio) with a chart drawn from the same rows, and
`?export=<table>` sends that table as CSV."""

from zoneinfo import ZoneInfo

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from alignment.decorators import team_member_required
from alignment.lib.csv_safe import csv_lines
from kpis import selectors
from kpis.content_tables import content_tables
from kpis.forms import KpiFilterForm
from kpis.selectors.goals import goals_timezone
from kpis.story_tables import story_tables
from kpis.tables import COUNT, DAYS, HOURS, MONEY, PERCENT, TEXT, Table, pct
from kpis.voice_tables import voice_tables


def _funnel(funnel) -> Table:
    return Table(
        "funnel",
        "Funnel",
        [
            ("Stage", TEXT),
            ("Reached", COUNT),
            ("Conversion", PERCENT),
            ("Dropped", COUNT),
            ("Median time in stage", HOURS),
            ("Stays measured", COUNT),
        ],
        [
            [s.label, s.reached, s.conversion, s.dropped, s.median_hours_in_stage, s.stays_measured]
            for s in funnel.steps
        ],
        chart=1,
        empty="No lead was created in this period with these filters: pick another period or "
        "clear a filter.",
        note="The leads created in the period, each followed to the furthest stage it has "
        "reached by now; conversion is a step ÷ the one before, dropped is reached here but "
        f"no further. Won ÷ leads: {pct(funnel.overall)}.",
    )


def _shares(key: str, title: str, heading: str, counts: dict[str, int], **text) -> Table:
    """A whole split three ways (good, bad, pending), drawn as a doughnut in that order."""
    return Table(
        key,
        title,
        [(heading, TEXT), ("Count", COUNT)],
        [[label, n] for label, n in counts.items()],
        chart=1,
        chart_type="doughnut",
        **text,
    )


def _acceptance(acceptance) -> Table:
    counts = {
        "Accepted": acceptance.accepted,
        "Rejected": acceptance.rejected,
        "Undecided": acceptance.undecided,
    }
    return _shares(
        "acceptance",
        "MQL acceptance",
        "Decision on the MQL",
        counts,
        empty="No MQL entered the stage in this period: pick another period or clear a filter.",
        note=f"{acceptance.mqls} MQLs; acceptance rate (accepted ÷ decided so far): "
        f"{pct(acceptance.rate)}. Not filtered by rep.",
    )


def _reasons(reasons) -> Table:
    return Table(
        "rejections",
        "Rejection reasons by source",
        [("Reason", TEXT), ("Source", TEXT), ("Rejections", COUNT)],
        [[r.reason, r.source, r.count] for r in reasons],
        chart=2,
        empty="Sales rejected none of this period's MQLs: nothing to show.",
        note="Why sales rejected the period's MQLs, most frequent first. Not filtered by rep.",
    )


def _feedback(key: str, heading: str, rows) -> Table:
    return Table(
        key,
        f"Sales feedback on MQLs by {heading.lower()}",
        [
            (heading, TEXT),
            ("MQLs", COUNT),
            ("Accepted", COUNT),
            ("Rejected", COUNT),
            ("Undecided", COUNT),
            ("Acceptance rate", PERCENT),
            ("Why rejected", TEXT),
        ],
        [
            [
                r.name,
                r.mqls,
                r.accepted,
                r.rejected,
                r.undecided,
                r.acceptance_rate,
                ", ".join(f"{label} ({n})" for label, n in r.reasons[:3]),
            ]
            for r in rows
        ],
        chart=1,
        labels=1,
        empty="No MQL entered the stage in this period: pick another period or clear a filter.",
        note="How sales decided the period's MQLs (whenever they decided) and the three most "
        "frequent reasons they gave for rejecting them; lowest acceptance first. Rejected "
        "includes MQLs recycled straight back to marketing. Not filtered by rep.",
    )


def _velocity(velocity) -> Table:
    rows = [*velocity.rows, velocity.total]
    return Table(
        "velocity",
        "Sales velocity by source",
        [
            ("Source", TEXT),
            ("Open", COUNT),
            ("Won", COUNT),
            ("Lost", COUNT),
            ("Win rate", PERCENT),
            ("Value won", MONEY),
            ("Avg deal", MONEY),
            ("Avg cycle", DAYS),
            ("Velocity / day", MONEY),
        ],
        [
            [
                r.source if r is not velocity.total else "Total",
                r.open_opportunities,
                r.won,
                r.lost,
                r.win_rate,
                r.won_value,
                r.average_deal,
                r.average_cycle_days,
                r.velocity_per_day,
            ]
            for r in rows
        ]
        if velocity.rows
        else [],
        chart=8,
        empty="No opportunity was open or closed in this period: pick another period or clear "
        "a filter.",
        note="Open opportunities at the period's end × win rate (won ÷ won and lost as an "
        "opportunity) × average deal ÷ average cycle days from MQL to win. Velocity is empty "
        "while no deal closed or none was won.",
    )


def _attribution(key: str, title: str, attribution) -> list[Table]:
    ways = [
        ("source", "by source", attribution.by_source),
        ("first", "by campaign, first touch", attribution.by_first_touch),
        ("last", "by campaign, last touch", attribution.by_last_touch),
    ]
    return [
        Table(
            f"{key}_{way}",
            f"{title} {label}",
            [
                ("Source" if way == "source" else "Campaign", TEXT),
                ("Deals", COUNT),
                ("Value", MONEY),
            ],
            [[c.name, c.deals, c.value] for c in credits],
            chart=2,
            empty=f"No deal in this period with these filters, so no {title.lower()} to "
            "credit: pick another period or clear a filter.",
        )
        for way, label, credits in ways
    ]


def _sla(attainment, speed) -> Table:
    counts = {"Met": attainment.met, "Breached": attainment.breached, "Running": attainment.running}
    return _shares(
        "sla",
        "Response within the SLA",
        "Response clocks",
        counts,
        empty="No response clock started in this period: pick another period or another rep.",
        note=f"{attainment.started} clocks started; met on time: {pct(attainment.share)}. "
        f"Speed to lead over {speed.responded} responded: median "
        f"{_hours(speed.median_hours)}, 90th percentile {_hours(speed.p90_hours)} (business "
        "hours). Filtered by rep only.",
    )


def _speed(key: str, heading: str, rows) -> Table:
    return Table(
        key,
        f"Speed to lead by {heading.lower()}",
        [
            (heading, TEXT),
            ("Clocks", COUNT),
            ("Met on time", COUNT),
            ("Attainment", PERCENT),
            ("Responded", COUNT),
            ("Median", HOURS),
            ("90th percentile", HOURS),
        ],
        [
            [r.name, r.started, r.met, r.attainment, r.responded, r.median_hours, r.p90_hours]
            for r in rows
        ],
        chart=1,
        labels=1,
        empty="No response clock started in this period: pick another period or clear a filter.",
        note="Business hours from assignment to the owner's first call, email or meeting, over "
        "the response clocks started in the period (cancelled ones left out); slowest first.",
    )


def _hours(value) -> str:
    return "—" if value is None else f"{value:g} h"


def kpi_tables(*, period, source_id, campaign_id, rep_id) -> list[Table]:
    lead_filters = {"source_id": source_id, "campaign_id": campaign_id, "rep_id": rep_id}
    marketing = {"source_id": source_id, "campaign_id": campaign_id}
    return [
        _funnel(selectors.lead_funnel(period=period, **lead_filters)),
        _acceptance(selectors.mql_acceptance(period=period, **marketing)),
        _reasons(selectors.rejection_reasons_by_source(period=period, **marketing)),
        _feedback(
            "feedback",
            "Source",
            selectors.mql_feedback(period=period, group_by="source", **marketing),
        ),
        _feedback(
            "feedback_campaign",
            "Campaign",
            selectors.mql_feedback(period=period, group_by="campaign", **marketing),
        ),
        _velocity(selectors.sales_velocity(period=period, **lead_filters)),
        *_attribution(
            "pipeline",
            "Pipeline created",
            selectors.pipeline_attribution(period=period, **lead_filters),
        ),
        *_attribution(
            "revenue", "Revenue won", selectors.revenue_attribution(period=period, **lead_filters)
        ),
        _sla(
            selectors.sla_response_attainment(period=period, rep_id=rep_id),
            selectors.speed_to_lead(period=period, rep_id=rep_id),
        ),
        *(
            _speed(
                f"speed_{group}",
                heading,
                selectors.speed_to_lead_by(
                    period=period, group_by=group, rep_id=rep_id, source_id=source_id
                ),
            )
            for group, heading in (("rep", "Rep"), ("source", "Source"))
        ),
        # the feedback loops (content/): what sales used and heard, why deals closed
        *content_tables(period=period, **marketing),
        *voice_tables(period=period, **marketing),
        *story_tables(period=period, **marketing),
    ]


def _csv(table: Table, period_label: str) -> HttpResponse:
    response = HttpResponse(
        "".join(csv_lines([h for h, _ in table.columns], table.rows)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="kpis-{table.key}-{period_label}.csv"'
    return response


@team_member_required
def kpi_page(request):
    now = timezone.now()
    tz = goals_timezone()
    form = KpiFilterForm(
        request.GET,
        tz=tz,
        this_week=selectors.iso_week_of(now, tz=tz),
        this_month=now.astimezone(ZoneInfo(tz)).strftime("%Y-%m"),
    )
    if not form.is_valid():
        return render(request, "kpis/page.html", {"form": form, "timezone": tz}, status=400)
    data = form.cleaned_data
    period = data["period_obj"]
    tables = kpi_tables(
        period=period.until(now) if period.start < now else period,
        source_id=data["source"].pk if data.get("source") else None,
        campaign_id=data["campaign"].pk if data.get("campaign") else None,
        rep_id=data["rep"].pk if data.get("rep") else None,
    )
    export = request.GET.get("export")
    if export:
        table = next((t for t in tables if t.key == export), None)
        if table is None:
            raise Http404("There is no table by that name on the KPI page.")
        return _csv(table, data["period"])
    board = selectors.goals_board(at=now, tz=tz)
    query = request.GET.copy()
    query.pop("export", None)
    return render(
        request,
        "kpis/page.html",
        {
            "form": form,
            "timezone": tz,
            "period": period,
            "period_label": data["period"],
            "tables": tables,
            "charts": {t.key: t.chart_data() for t in tables},
            "goal_columns": [
                ("Marketing's", board.marketing),
                ("Shared", board.shared),
                ("Sales'", board.sales),
            ],
            "query": query.urlencode(),
        },
    )
