"""The shared KPIs over REST (scope `kpis:read`): the weekly SLA report's figures and the
marketing page's rows, built by the same functions from the same selectors, never a second way.

Weeks and months are cut in the time zone of the agreement in force (its business calendar), as
the report does; without an agreement there is neither a calendar nor commitments (409)."""

import re

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from alignment.api_base import AwareDateTimeField, TeamReadView
from alignment.lib.errors import DomainError
from kpis import selectors
from kpis.selectors import Period
from sla.models import Agreement
from sla.report.figures import agreement_timezone, marketing_figures, report_figures
from sla.selectors import agreement_active

READ_SCOPE = "kpis:read"
WEEK = re.compile(r"\d{4}-W\d{2}")
MONTH = re.compile(r"\d{4}-\d{2}")
# the calendar's arithmetic (a trend of weeks back, the next month) stays inside datetime's range
FIRST_YEAR, LAST_YEAR = 1900, 2999


class NoAgreement(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = (
        "No agreement is in force, so there is no calendar to cut periods in and nothing to "
        "count against; sign one on the agreement pages."
    )
    default_code = "no_agreement"


class _PeriodQuery(serializers.Serializer):
    period = serializers.CharField(
        required=False,
        help_text="An ISO week (2026-W47) in the agreement's time zone; the marketing figures "
        "also take a month (2026-11). Default: the week of `at`.",
    )
    at = AwareDateTimeField(
        required=False,
        help_text="Count as of this time (default: now): a period still in progress is counted "
        "up to it, and open clocks are those running then. Not in the future.",
    )

    months = False

    def validate_period(self, value: str) -> str:
        value = value.strip().upper()
        if not (WEEK.fullmatch(value) or (self.months and MONTH.fullmatch(value))):
            raise serializers.ValidationError(
                "Write an ISO week like 2026-W47"
                + (" or a month like 2026-11." if self.months else ".")
            )
        if not FIRST_YEAR <= int(value[:4]) <= LAST_YEAR:
            raise serializers.ValidationError(f"Give a year from {FIRST_YEAR} to {LAST_YEAR}.")
        return value

    def validate_at(self, value):
        if value > timezone.now():
            raise serializers.ValidationError("Give a time that is not in the future.")
        if value.year < FIRST_YEAR:
            raise serializers.ValidationError(f"Give a time from {FIRST_YEAR} on.")
        return value


class _MonthOrWeekQuery(_PeriodQuery):
    months = True


def _query(request, serializer_class: type[_PeriodQuery]) -> tuple[Agreement, str, object]:
    """The agreement in force, the period's label and the time to count at, or a 400/409."""
    agreement = agreement_active()
    if agreement is None:
        raise NoAgreement()
    params = {k: request.query_params[k] for k in ("period", "at") if k in request.query_params}
    query = serializer_class(data=params)
    query.is_valid(raise_exception=True)
    at = query.validated_data.get("at") or timezone.now()
    period = query.validated_data.get("period")
    return agreement, period or selectors.iso_week_of(at, tz=agreement_timezone(agreement)), at


def _period(label: str, *, tz: str) -> Period:
    try:
        if WEEK.fullmatch(label):
            return selectors.iso_week_period(label, tz=tz)
        return selectors.month_period(label, tz=tz)
    except DomainError as error:  # week 54, month 13
        raise exceptions.ValidationError({"period": [error.message]}) from None


# --- the schema of the figures (the views return the figures exactly as built) ---------------


class KpiAcceptance(serializers.Serializer):
    mqls = serializers.IntegerField(help_text="MQLs that entered the stage in the period.")
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    undecided = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="accepted / decided, percent.")


class KpiPipeline(serializers.Serializer):
    opportunities = serializers.IntegerField()
    value = serializers.CharField(help_text="Sum of deal values, a decimal string.")


class KpiCommitments(serializers.Serializer):
    mqls = serializers.FloatField()
    acceptance_rate = serializers.FloatField()
    pipeline = serializers.CharField()
    note = serializers.CharField(help_text="How a commitment was pro-rated, if it was.")


class KpiReason(serializers.Serializer):
    source = serializers.CharField()
    reason_code = serializers.CharField()
    reason = serializers.CharField()
    count = serializers.IntegerField()


class MarketingFiguresSerializer(serializers.Serializer):
    label = serializers.CharField()
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    mqls_delivered = serializers.IntegerField()
    acceptance = KpiAcceptance()
    pipeline = KpiPipeline()
    commitments = KpiCommitments()
    mqls_attainment = serializers.FloatField(allow_null=True, help_text="Percent of commitment.")
    mqls_met = serializers.BooleanField()
    acceptance_met = serializers.BooleanField(allow_null=True)
    pipeline_attainment = serializers.FloatField(allow_null=True)
    pipeline_met = serializers.BooleanField()


class KpiReportMarketing(MarketingFiguresSerializer):
    rejection_reasons = KpiReason(many=True)


class KpiResponse(serializers.Serializer):
    started = serializers.IntegerField()
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    running = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)


class KpiSpeed(serializers.Serializer):
    responded = serializers.IntegerField()
    median_hours = serializers.FloatField(allow_null=True)
    p90_hours = serializers.FloatField(allow_null=True)


class KpiFollowup(serializers.Serializer):
    accepted = serializers.IntegerField()
    due = serializers.IntegerField()
    kept = serializers.IntegerField()
    open = serializers.IntegerField()
    kept_so_far = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    median_attempts = serializers.FloatField(allow_null=True)


class KpiRepBreaches(serializers.Serializer):
    rep_id = serializers.IntegerField(allow_null=True)
    rep = serializers.CharField()
    response = serializers.IntegerField()
    decision = serializers.IntegerField()
    total = serializers.IntegerField()


class KpiRepOpen(serializers.Serializer):
    rep_id = serializers.IntegerField(allow_null=True)
    rep = serializers.CharField()
    open = serializers.IntegerField()
    overdue = serializers.IntegerField()


class KpiOpenClocks(serializers.Serializer):
    at = serializers.DateTimeField()
    total = serializers.IntegerField()
    overdue = serializers.IntegerField()
    by_rep = KpiRepOpen(many=True)


class KpiSales(serializers.Serializer):
    mqls_received = serializers.IntegerField()
    response = KpiResponse()
    speed_to_lead = KpiSpeed()
    followup = KpiFollowup()
    breaches_by_rep = KpiRepBreaches(many=True)
    open_clocks = KpiOpenClocks()


class KpiReportPeriod(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    timezone = serializers.CharField()
    partial = serializers.BooleanField(help_text="The week is still in progress at `at`.")
    counted_until = serializers.DateTimeField()


class KpiReportAgreement(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    name = serializers.CharField()
    commitment_period = serializers.CharField()
    response_hours = serializers.FloatField()
    decision_hours = serializers.FloatField()
    followup_attempts = serializers.IntegerField()
    followup_days = serializers.IntegerField()
    review_date = serializers.DateField(allow_null=True)
    review_due = serializers.BooleanField()


class KpiTrend(serializers.Serializer):
    week = serializers.CharField()
    first_day = serializers.DateField()
    mqls = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)
    pipeline = serializers.CharField()
    response_share = serializers.FloatField(allow_null=True)
    followup_share = serializers.FloatField(allow_null=True)
    followup_due = serializers.IntegerField()


class KpiWonCustomer(serializers.Serializer):
    lead_id = serializers.IntegerField()
    customer = serializers.CharField()
    contact = serializers.CharField()
    deal_value = serializers.CharField(allow_null=True)
    source = serializers.CharField()
    rep = serializers.CharField()
    won_at = serializers.DateTimeField()


class KpiWon(serializers.Serializer):
    count = serializers.IntegerField()
    value = serializers.CharField()
    customers = KpiWonCustomer(many=True)


class SummarySerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The layout of these figures.")
    week = serializers.CharField()
    period = KpiReportPeriod()
    generated_at = serializers.DateTimeField()
    agreement = KpiReportAgreement()
    sales = KpiSales()
    marketing = KpiReportMarketing()
    trend = KpiTrend(many=True)
    won = KpiWon()


MARKETING_EXAMPLE = {
    "label": "2026-W47",
    "first_day": "2026-11-16",
    "last_day": "2026-11-22",
    "mqls_delivered": 42,
    "acceptance": {"mqls": 42, "accepted": 30, "rejected": 6, "undecided": 6, "rate": 83.3},
    "pipeline": {"opportunities": 5, "value": "61000.00"},
    "commitments": {"mqls": 50.0, "acceptance_rate": 70.0, "pipeline": "50000.00", "note": ""},
    "mqls_attainment": 84.0,
    "mqls_met": False,
    "acceptance_met": True,
    "pipeline_attainment": 122.0,
    "pipeline_met": True,
}
SUMMARY_EXAMPLE = {
    "version": 2,
    "week": "2026-W47",
    "period": {
        "start": "2026-11-15T23:00:00+00:00",
        "end": "2026-11-22T23:00:00+00:00",
        "first_day": "2026-11-16",
        "last_day": "2026-11-22",
        "timezone": "Europe/Berlin",
        "partial": False,
        "counted_until": "2026-11-22T23:00:00+00:00",
    },
    "generated_at": "2026-11-23T07:00:00+00:00",
    "agreement": {
        "id": 3,
        "label": "v3",
        "name": "Alignment agreement",
        "commitment_period": "week",
        "response_hours": 4.0,
        "decision_hours": 16.0,
        "followup_attempts": 3,
        "followup_days": 10,
        "review_date": None,
        "review_due": False,
    },
    "sales": {
        "mqls_received": 42,
        "response": {"started": 40, "met": 34, "breached": 4, "running": 2, "share": 85.0},
        "speed_to_lead": {"responded": 38, "median_hours": 1.25, "p90_hours": 3.6},
        "followup": {
            "accepted": 30,
            "due": 0,
            "kept": 0,
            "open": 30,
            "kept_so_far": 12,
            "share": None,
            "median_attempts": None,
        },
        "breaches_by_rep": [
            {"rep_id": 12, "rep": "Rita Rep", "response": 3, "decision": 1, "total": 4}
        ],
        "open_clocks": {
            "at": "2026-11-23T07:00:00+00:00",
            "total": 9,
            "overdue": 2,
            "by_rep": [{"rep_id": 12, "rep": "Rita Rep", "open": 9, "overdue": 2}],
        },
    },
    "marketing": {
        **MARKETING_EXAMPLE,
        "rejection_reasons": [
            {"source": "Webinar", "reason_code": "no_budget", "reason": "No budget", "count": 4}
        ],
    },
    "trend": [
        {
            "week": "2026-W47",
            "first_day": "2026-11-16",
            "mqls": 42,
            "acceptance_rate": 83.3,
            "pipeline": "61000.00",
            "response_share": 85.0,
            "followup_share": None,
            "followup_due": 0,
        }
    ],
    "won": {"count": 0, "value": "0.00", "customers": []},
}

_BAD_PERIOD = OpenApiExample(
    "Not a week",
    value={
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The request has invalid fields.",
        "instance": "/api/v1/kpis/summary/",
        "code": "invalid",
        "errors": {"period": ["Write an ISO week like 2026-W47."]},
    },
    response_only=True,
    status_codes=["400"],
)
_AT = OpenApiParameter(
    "at", str, description="Count as of this time, ISO 8601 with an offset (default: now)."
)


class _KpiView(TeamReadView):
    required_scopes = (READ_SCOPE,)


class SummaryView(_KpiView):
    @extend_schema(
        summary="The week's KPIs (the weekly SLA report's figures)",
        description="Every figure of the weekly SLA report for one ISO week, with the counts "
        "behind each share: marketing's MQLs, acceptance, pipeline and rejection reasons "
        "against the commitments; sales' first-touch attainment, speed to lead, follow-up, "
        "breaches and open clocks by rep; a four-week trend; the customers won. Built by the "
        "report's own function, so the API and the report agree. Scope: `kpis:read`.",
        parameters=[
            OpenApiParameter(
                "period", str, description="ISO week, e.g. 2026-W47 (default: the week of `at`)."
            ),
            _AT,
        ],
        responses={200: SummarySerializer},
        examples=[
            OpenApiExample("A week", value=SUMMARY_EXAMPLE, response_only=True),
            _BAD_PERIOD,
        ],
        tags=["kpis"],
    )
    def get(self, request):
        agreement, label, at = _query(request, _PeriodQuery)
        week = _period(label, tz=agreement_timezone(agreement)).label
        return Response(report_figures(week=week, agreement=agreement, now=at))


class MarketingView(_KpiView):
    @extend_schema(
        summary="Marketing against its commitments for a week or a month",
        description="The marketing page's row for one ISO week or calendar month: MQLs "
        "delivered, their acceptance (accepted, rejected, undecided), pipeline created, and "
        "each against the agreement's commitment (pro-rated when the agreement counts in the "
        "other unit). Scope: `kpis:read`.",
        parameters=[
            OpenApiParameter(
                "period", str, description="2026-W47 or 2026-11 (default: the week of `at`)."
            ),
            _AT,
        ],
        responses={200: MarketingFiguresSerializer},
        examples=[
            OpenApiExample("A week", value=MARKETING_EXAMPLE, response_only=True),
            _BAD_PERIOD,
        ],
        tags=["kpis"],
    )
    def get(self, request):
        agreement, label, at = _query(request, _MonthOrWeekQuery)
        period = _period(label, tz=agreement_timezone(agreement)).until(at)
        return Response(marketing_figures(agreement=agreement, period=period))


urlpatterns = [
    path("summary/", SummaryView.as_view(), name="api-kpis-summary"),
    path("marketing/", MarketingView.as_view(), name="api-kpis-marketing"),
]
