"""The weekly report's figures, as data (what the archive keeps), built from the kpis selectors;
and what the templates need on top of them (bar widths, numbers in words).

Weeks are ISO weeks in the agreement's calendar's time zone. A monthly commitment is pro-rated
to a week as commitment x 7 / days in the month of the week's Thursday (the ISO week's month),
and a weekly one to a month as commitment x days in month / 7; the report says so.
"""

from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse

from alignment.lib.business_time import Calendar
from alignment.lib.money import format_money
from kpis import selectors
from kpis.selectors import Period
from kpis.selectors.content import content_report
from kpis.selectors.flags import flags_report
from kpis.selectors.stories import stories_report
from kpis.selectors.voice import objections_report
from sla.models import Agreement, CommitmentPeriod

# the figures' layout; a template reading an older archive can tell (2: sales' follow-up; 3: the
# feedback loops: content shared and unused, objections, open flags, win and loss stories)
FIGURES_VERSION = 3
TREND_WEEKS = 4
TOP_REASONS = 8
WON_LISTED = 20
# the shared dashboard: the KPI page
DASHBOARD_PATH = "/kpis/"


def agreement_timezone(agreement: Agreement) -> str:
    return Calendar.from_json(agreement.calendar).timezone


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def commitments_for(*, agreement: Agreement, period: Period) -> dict:
    """The marketing commitments for one week or month, pro-rated when the agreement counts in
    the other unit; `note` says how (empty when no pro-rating was needed)."""
    mqls = Decimal(agreement.mqls_committed)
    pipeline = Decimal(agreement.pipeline_committed)
    note = ""
    if period.kind == "week" and agreement.commitment_period == CommitmentPeriod.MONTH:
        thursday = period.first_day + timedelta(days=3)
        days = selectors.days_in_month(thursday)
        factor = Decimal(7) / Decimal(days)
        note = (
            f"The agreement commits per month; the week's share is the monthly commitment "
            f"x 7 / {days} (days in {thursday:%B %Y})."
        )
    elif period.kind == "month" and agreement.commitment_period == CommitmentPeriod.WEEK:
        days = selectors.days_in_month(period.first_day)
        factor = Decimal(days) / Decimal(7)
        note = f"The agreement commits per week; a month's share is the weekly one x {days} / 7."
    else:
        factor = Decimal(1)
    return {
        "mqls": float(round(mqls * factor, 1)),
        "acceptance_rate": float(agreement.acceptance_rate_committed),
        "pipeline": _money(pipeline * factor),
        "note": note,
    }


def _share(value: float | int, of: float | int) -> float | None:
    return round(100 * float(value) / float(of), 1) if of else None


def marketing_figures(*, agreement: Agreement, period: Period) -> dict:
    """Marketing against its commitments for one period (the report and the marketing page)."""
    acceptance = selectors.mql_acceptance(period=period)
    pipeline = selectors.pipeline_created(period=period)
    commitments = commitments_for(agreement=agreement, period=period)
    return {
        "label": period.label,
        "first_day": period.first_day.isoformat(),
        "last_day": period.last_day.isoformat(),
        "mqls_delivered": acceptance.mqls,
        "acceptance": asdict(acceptance),
        "pipeline": {"opportunities": pipeline.opportunities, "value": _money(pipeline.value)},
        "commitments": commitments,
        "mqls_attainment": _share(acceptance.mqls, commitments["mqls"]),
        "mqls_met": acceptance.mqls >= commitments["mqls"],
        "acceptance_met": (
            None if acceptance.rate is None else acceptance.rate >= commitments["acceptance_rate"]
        ),
        "pipeline_attainment": _share(pipeline.value, Decimal(commitments["pipeline"])),
        "pipeline_met": pipeline.value >= Decimal(commitments["pipeline"]),
    }


def review_due(agreement: Agreement, *, today: date) -> bool:
    return agreement.review_date is not None and agreement.review_date < today


def _followup(*, agreement: Agreement, period: Period, now: datetime) -> selectors.Followup:
    return selectors.followup_attainment(
        period=period,
        attempts=agreement.followup_attempts,
        days=agreement.followup_days,
        now=now,
    )


def _trend(*, agreement: Agreement, week: str, now: datetime, tz: str) -> list[dict]:
    rows = []
    for label in selectors.weeks_back(week, TREND_WEEKS):
        period = selectors.iso_week_period(label, tz=tz).until(now)
        acceptance = selectors.mql_acceptance(period=period)
        followup = _followup(agreement=agreement, period=period, now=now)
        rows.append(
            {
                "week": label,
                "first_day": period.first_day.isoformat(),
                "mqls": acceptance.mqls,
                "acceptance_rate": acceptance.rate,
                "pipeline": _money(selectors.pipeline_created(period=period).value),
                "response_share": selectors.sla_response_attainment(period=period).share,
                # a week's acceptances still within their window count once it has closed
                "followup_share": followup.share,
                "followup_due": followup.due,
            }
        )
    return rows


def report_figures(*, week: str, agreement: Agreement, now: datetime) -> dict:
    """Every figure of one ISO week's report, JSON-ready. A week still in progress is counted up
    to `now` and marked partial; open clocks are those running at `now` (the report's time)."""
    tz = agreement_timezone(agreement)
    full = selectors.iso_week_period(week, tz=tz)
    period = full.until(now)
    today = now.astimezone(ZoneInfo(tz)).date()
    marketing = marketing_figures(agreement=agreement, period=period)
    marketing["commitments"] = commitments_for(agreement=agreement, period=full)
    response = selectors.sla_response_attainment(period=period)
    speed = selectors.speed_to_lead(period=period)
    open_clocks = selectors.sla_clocks_open(at=now)
    followup = _followup(agreement=agreement, period=period, now=now)
    won_count, won_value, won = selectors.won_customers(period=period, limit=WON_LISTED)
    reasons = selectors.rejection_reasons_by_source(period=period, limit=TOP_REASONS)
    return {
        "version": FIGURES_VERSION,
        "week": full.label,
        "period": {
            "start": full.start.isoformat(),
            "end": full.end.isoformat(),
            "first_day": full.first_day.isoformat(),
            "last_day": full.last_day.isoformat(),
            "timezone": tz,
            "partial": period.end < full.end,
            "counted_until": period.end.isoformat(),
        },
        "generated_at": now.isoformat(),
        "agreement": {
            "id": agreement.pk,
            "label": agreement.label,
            "name": agreement.name,
            "commitment_period": agreement.commitment_period,
            "response_hours": float(agreement.response_hours),
            "decision_hours": float(agreement.decision_hours),
            "followup_attempts": agreement.followup_attempts,
            "followup_days": agreement.followup_days,
            "review_date": agreement.review_date.isoformat() if agreement.review_date else None,
            "review_due": review_due(agreement, today=today),
        },
        "sales": {
            "mqls_received": marketing["mqls_delivered"],
            "response": asdict(response),
            "speed_to_lead": asdict(speed),
            "followup": asdict(followup),
            "breaches_by_rep": [
                {**asdict(b), "total": b.total}
                for b in selectors.sla_breaches_by_rep(period=period)
            ],
            "open_clocks": {
                "at": now.isoformat(),
                "total": sum(r.open for r in open_clocks),
                "overdue": sum(r.overdue for r in open_clocks),
                "by_rep": [asdict(r) for r in open_clocks],
            },
        },
        "marketing": {
            **marketing,
            "rejection_reasons": [asdict(r) for r in reasons],
        },
        "trend": _trend(agreement=agreement, week=full.label, now=now, tz=tz),
        # the feedback loops between the teams (content/), each from its kpis selector
        "feedback": {
            "content": content_report(period=period),
            "objections": objections_report(period=period),
            "flags": flags_report(period=period, at=now),
            "stories": stories_report(period=period),
        },
        "won": {
            "count": won_count,
            "value": _money(won_value),
            "customers": [
                {
                    **asdict(w),
                    "deal_value": _money(w.deal_value) if w.deal_value is not None else None,
                    "won_at": w.won_at.isoformat(),
                }
                for w in won
            ],
        },
    }


# --- presentation --------------------------------------------------------------------------------


def _number(value: float | int | str | None, places: int = 0) -> str:
    if value is None:
        return "–"
    return f"{Decimal(str(value)):,.{places}f}"


def _bar(value: float | None, top: float) -> int:
    """A bar's width in percent of its row: the top value takes 75% (the figure is written
    beside the bar), a small one at least 1 so that it shows."""
    if not value or not top:
        return 0
    return max(1, round(75 * float(value) / top))


def _day(value: str) -> date:
    return date.fromisoformat(value)


def report_context(figures: dict) -> dict:
    """What the email and the pages render from the stored figures: the figures themselves plus
    numbers and dates in words, bar widths and absolute links."""
    period = figures["period"]
    first, last = _day(period["first_day"]), _day(period["last_day"])
    same_month = first.month == last.month
    dates = f"{first.day}{'' if same_month else f' {first:%b}'}–{last.day} {last:%b %Y}"
    trend = figures["trend"]
    top_mqls = max([t["mqls"] for t in trend] + [figures["marketing"]["commitments"]["mqls"]])
    top_pipeline = max(
        [float(t["pipeline"]) for t in trend]
        + [float(figures["marketing"]["commitments"]["pipeline"])]
    )
    bars = [
        {
            **t,
            "label": f"{t['week']} ({_day(t['first_day']):%-d %b})",
            "mqls_bar": _bar(t["mqls"], top_mqls),
            "acceptance_bar": _bar(t["acceptance_rate"], 100),
            "pipeline_text": format_money(t["pipeline"], places=0),
            "pipeline_bar": _bar(float(t["pipeline"]), top_pipeline),
            "response_bar": _bar(t["response_share"], 100),
            # reports archived before version 2 have no follow-up figures
            "followup_bar": _bar(t.get("followup_share"), 100),
        }
        for t in trend
    ]
    marketing = figures["marketing"]
    sales = figures["sales"]
    site = settings.SITE_URL
    generated = datetime.fromisoformat(figures["generated_at"]).astimezone(
        ZoneInfo(period["timezone"])
    )
    counted_until = datetime.fromisoformat(period["counted_until"]).astimezone(
        ZoneInfo(period["timezone"])
    )
    return {
        "f": figures,
        "dates": dates,
        "generated": f"{generated:%a %-d %b %Y %H:%M} {period['timezone']}",
        "counted_until": f"{counted_until:%a %-d %b %H:%M}",
        "trend": bars,
        "commitment_mqls_bar": _bar(marketing["commitments"]["mqls"], top_mqls),
        "pipeline_value": format_money(marketing["pipeline"]["value"], places=0),
        "pipeline_committed": format_money(marketing["commitments"]["pipeline"], places=0),
        "won_value": format_money(figures["won"]["value"], places=0),
        "won_customers": [
            {**w, "deal_text": format_money(w["deal_value"]) or "–"}
            for w in figures["won"]["customers"]
        ],
        "speed_median": _number(sales["speed_to_lead"]["median_hours"], 1),
        "speed_p90": _number(sales["speed_to_lead"]["p90_hours"], 1),
        "review_date": (
            f"{_day(figures['agreement']['review_date']):%-d %B %Y}"
            if figures["agreement"]["review_date"]
            else ""
        ),
        "report_url": site + reverse("sla_report:detail", args=[figures["week"]]),
        "preview_url": site + reverse("sla_report:preview") + f"?week={figures['week']}",
        "dashboard_url": site + DASHBOARD_PATH,
        "agreement_url": site + reverse("sla:agreement"),
        "site_url": site,
    }


def subject_for(figures: dict) -> str:
    context = report_context(figures)
    share = figures["sales"]["response"]["share"]
    # the same rounding as the body's (79.5%, not 80%)
    shown = f"{share:.1f}".removesuffix(".0") if share is not None else ""
    responded = f"{shown}% responded in time" if share is not None else "no MQLs assigned"
    # ASCII: an encoded-word subject is folded onto a continuation line that some clients show
    # with a leading space
    dates = context["dates"].replace("–", "-")
    return (
        f"SLA report {figures['week']} ({dates}): "
        f"{figures['marketing']['mqls_delivered']} MQLs, {responded}"
    )


def week_start_local(day: date, zone: ZoneInfo, hour: int) -> datetime:
    """Monday of `day`'s ISO week at `hour`:00 in `zone`."""
    monday = day - timedelta(days=day.weekday())
    return datetime.combine(monday, time(hour), tzinfo=zone)
