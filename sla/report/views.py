"""The report pages: the archive (list and one report as it was sent), the preview of any week,
and the marketing side against its commitments by week and by month."""

from zoneinfo import ZoneInfo

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from alignment.decorators import team_member_required
from alignment.lib.errors import DomainError
from kpis import selectors
from sla.models import CommitmentPeriod
from sla.report import services
from sla.report.figures import agreement_timezone, marketing_figures, report_context
from sla.report.models import DeliveryStatus, SlaReport
from sla.selectors import agreement_active

MARKETING_WEEKS = 8
MARKETING_MONTHS = 6


@team_member_required
def report_list(request):
    reports = SlaReport.objects.select_related("agreement").annotate(
        recipients=Count("deliveries"),
        sent=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.SENT)),
    )
    agreement = agreement_active()
    current = (
        selectors.iso_week_of(timezone.now(), tz=agreement_timezone(agreement)) if agreement else ""
    )
    return render(request, "sla/report_list.html", {"reports": reports, "current_week": current})


@team_member_required
def report_detail(request, week: str):
    report = get_object_or_404(SlaReport.objects.select_related("agreement"), week=week)
    context = report_context(report.figures)
    context.update(
        {
            "report": report,
            "deliveries": list(report.deliveries.all()),
            "archived": True,
            "week": report.week,
        }
    )
    return render(request, "sla/report_detail.html", context)


@team_member_required
def report_preview(request):
    """Any week's report as it would read now (not archived; the current week up to now)."""
    agreement = agreement_active()
    week = request.GET.get("week", "").strip()
    try:
        if not week:
            if agreement is None:
                raise DomainError("No agreement is in force, so there is nothing to report.")
            week = selectors.iso_week_of(timezone.now(), tz=agreement_timezone(agreement))
        figures = services.sla_report_preview(week=week)
    except DomainError as error:
        return render(
            request, "sla/report_detail.html", {"error": error.message, "week": week}, status=400
        )
    context = report_context(figures)
    context.update({"archived": False, "week": figures["week"]})
    return render(request, "sla/report_detail.html", context)


@team_member_required
def marketing_side(request):
    """Marketing against the agreement's commitments: the last weeks and months, by cohort."""
    agreement = agreement_active()
    if agreement is None:
        return render(request, "sla/report_marketing.html", {"agreement": None})
    tz = agreement_timezone(agreement)
    now = timezone.now()
    this_week = selectors.iso_week_of(now, tz=tz)
    this_month = now.astimezone(ZoneInfo(tz)).strftime("%Y-%m")
    weeks = [
        marketing_figures(
            agreement=agreement, period=selectors.iso_week_period(w, tz=tz).until(now)
        )
        for w in reversed(selectors.weeks_back(this_week, MARKETING_WEEKS))
    ]
    months = [
        marketing_figures(agreement=agreement, period=selectors.month_period(m, tz=tz).until(now))
        for m in reversed(selectors.months_back(this_month, MARKETING_MONTHS))
    ]
    return render(
        request,
        "sla/report_marketing.html",
        {
            "agreement": agreement,
            "weeks": weeks,
            "months": months,
            "this_week": this_week,
            "this_month": this_month,
            "timezone": tz,
            # the pro-rating in words, when the agreement counts in the other unit
            "week_note": (
                "The agreement commits per month; a week's share is the monthly commitment "
                "x 7 / the days in the month of the week's Thursday."
                if agreement.commitment_period == CommitmentPeriod.MONTH
                else ""
            ),
            "month_note": (
                "The agreement commits per week; a month's share is the weekly commitment "
                "x the days in the month / 7."
                if agreement.commitment_period == CommitmentPeriod.WEEK
                else ""
            ),
        },
    )
