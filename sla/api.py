"""The alignment agreement and the SLA clocks over REST (read only, scope `sla:read`).

Signing an agreement stays on the agreement pages: the API's scopes have none for it."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from alignment.api import PROBLEM_EXAMPLES, api_can
from alignment.lib.business_time import Calendar, CalendarError
from alignment.permissions import Action
from alignment.signoff import VersionStatus
from sla.clocks.models import ClockKind, ClockStatus, SlaClock
from sla.models import Agreement
from sla.selectors import agreement_active, agreement_history, agreement_summary, calendar_words

READ_SCOPE = "sla:read"
CLOCK_PAGE_SIZE = 50
CLOCK_MAX_PAGE_SIZE = 500
MAX_ID = 2**63 - 1


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset; a time without one is refused rather than guessed."""

    default_error_messages = {
        "naive": "Give the time with its offset (2026-11-18T09:00:00+01:00 or ...Z).",
    }

    def to_internal_value(self, value):
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None and timezone.is_naive(parsed):
            self.fail("naive")
        return super().to_internal_value(value)


def require_team_member(request) -> None:
    """Reading is for team members: a session or a key acting as someone without a team role
    is refused; a key of its own is held to its scopes only."""
    if not api_can(request, Action.VIEW):
        raise exceptions.PermissionDenied("Your role may not read this; ask an admin for a role.")


# --- agreement --------------------------------------------------------------------------------


class AgreementScoringModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    mql_total = serializers.IntegerField()
    mql_fit = serializers.IntegerField()


class AgreementApprovalSerializer(serializers.Serializer):
    by = serializers.CharField(source="by.username")
    role = serializers.CharField(help_text="marketing_manager or sales_manager")
    note = serializers.CharField()
    at = serializers.DateTimeField()


class AgreementWordsSerializer(serializers.Serializer):
    label = serializers.CharField()
    text = serializers.CharField()


class AgreementInWordsSerializer(serializers.Serializer):
    definition = AgreementWordsSerializer(many=True)
    sales = AgreementWordsSerializer(many=True)
    marketing = AgreementWordsSerializer(many=True)
    calendar = serializers.CharField()
    escalation = AgreementWordsSerializer(many=True)
    report = AgreementWordsSerializer(many=True)
    review_passed = serializers.BooleanField()
    review_missing = serializers.BooleanField()
    scoring_model_replaced = serializers.BooleanField()


class AgreementSerializer(serializers.ModelSerializer):
    """One version of the agreement: its terms as numbers, the calendar (as stored and in
    words), who approved it, and the whole of it in words as the agreement page reads."""

    label = serializers.CharField()
    status = serializers.ChoiceField(choices=VersionStatus.choices)
    scoring_model = AgreementScoringModelSerializer(
        allow_null=True, help_text="The MQL definition."
    )
    sales = serializers.SerializerMethodField()
    marketing = serializers.SerializerMethodField()
    calendar = serializers.SerializerMethodField()
    escalation = serializers.SerializerMethodField()
    approvals = AgreementApprovalSerializer(many=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    in_words = serializers.SerializerMethodField()

    class Meta:
        model = Agreement
        fields = (
            "id",
            "version",
            "label",
            "name",
            "status",
            "scoring_model",
            "sales",
            "marketing",
            "calendar",
            "escalation",
            "review_date",
            "notes",
            "approvals",
            "created_by",
            "created_at",
            "proposed_at",
            "activated_at",
            "retired_at",
            "in_words",
        )

    @extend_schema_field(
        serializers.DictField(
            help_text="response_hours, decision_hours (business hours), followup_attempts, "
            "followup_days"
        )
    )
    def get_sales(self, agreement: Agreement) -> dict:
        return {
            "response_hours": float(agreement.response_hours),
            "decision_hours": float(agreement.decision_hours),
            "followup_attempts": agreement.followup_attempts,
            "followup_days": agreement.followup_days,
        }

    @extend_schema_field(
        serializers.DictField(
            help_text="commitment_period (week or month), mqls_committed, "
            "acceptance_rate_committed (percent), pipeline_committed (a decimal string)"
        )
    )
    def get_marketing(self, agreement: Agreement) -> dict:
        return {
            "commitment_period": agreement.commitment_period,
            "mqls_committed": agreement.mqls_committed,
            "acceptance_rate_committed": float(agreement.acceptance_rate_committed),
            "pipeline_committed": str(agreement.pipeline_committed),
        }

    @extend_schema_field(
        serializers.DictField(
            help_text="description (one line), timezone, hours per weekday, country, "
            "subdivision, closed_days"
        )
    )
    def get_calendar(self, agreement: Agreement) -> dict:
        try:
            stored = Calendar.from_json(agreement.calendar).as_json()
        except CalendarError:
            stored = agreement.calendar
        return {"description": calendar_words(agreement.calendar), **stored}

    @extend_schema_field(
        serializers.DictField(
            help_text="warn_share (0-1), notify_manager_on_breach, reassign_after_hours "
            "(null: never), on_reassign (restart or keep)"
        )
    )
    def get_escalation(self, agreement: Agreement) -> dict:
        hours = agreement.reassign_after_hours
        return {
            "warn_share": float(agreement.warn_share),
            "notify_manager_on_breach": agreement.notify_manager_on_breach,
            "reassign_after_hours": float(hours) if hours is not None else None,
            "on_reassign": agreement.on_reassign,
        }

    @extend_schema_field(AgreementInWordsSerializer)
    def get_in_words(self, agreement: Agreement) -> dict:
        return AgreementInWordsSerializer(agreement_summary(agreement)).data


AGREEMENT_EXAMPLE = {
    "id": 3,
    "version": 3,
    "label": "v3",
    "name": "Alignment agreement",
    "status": "active",
    "scoring_model": {
        "id": 7,
        "label": "v7",
        "name": "Default model",
        "status": "active",
        "mql_total": 100,
        "mql_fit": 40,
    },
    "sales": {
        "response_hours": 4.0,
        "decision_hours": 16.0,
        "followup_attempts": 3,
        "followup_days": 10,
    },
    "marketing": {
        "commitment_period": "week",
        "mqls_committed": 50,
        "acceptance_rate_committed": 70.0,
        "pipeline_committed": "0.00",
    },
    "calendar": {
        "description": "Mon–Fri 09:00–17:00 Europe/Berlin, public holidays of DE",
        "timezone": "Europe/Berlin",
        "hours": {"mon": [["09:00", "17:00"]], "sat": []},
        "country": "DE",
        "subdivision": "",
        "closed_days": [],
    },
    "escalation": {
        "warn_share": 0.75,
        "notify_manager_on_breach": True,
        "reassign_after_hours": None,
        "on_reassign": "restart",
    },
    "review_date": "2027-03-31",
    "notes": "",
    "approvals": [
        {"by": "mia", "role": "marketing_manager", "note": "", "at": "2026-11-02T10:00:00Z"},
        {"by": "sam", "role": "sales_manager", "note": "ok", "at": "2026-11-02T11:30:00Z"},
    ],
    "created_by": "mia",
    "created_at": "2026-11-01T09:00:00Z",
    "proposed_at": "2026-11-01T16:00:00Z",
    "activated_at": "2026-11-02T11:30:00Z",
    "retired_at": None,
    "in_words": {
        "definition": [{"label": "MQL definition", "text": "v7 Default model (MQL at ...)"}],
        "sales": [{"label": "First touch", "text": "within 4 business hours of assignment"}],
        "marketing": [{"label": "MQLs committed", "text": "50 MQLs a week"}],
        "calendar": "Mon–Fri 09:00–17:00 Europe/Berlin, public holidays of DE",
        "escalation": [{"label": "Warning", "text": "at 75% of the allowed time"}],
        "report": [{"label": "Report to the managers", "text": "yes"}],
        "review_passed": False,
        "review_missing": False,
        "scoring_model_replaced": False,
    },
}


class _SlaReadView(GenericAPIView):
    required_scopes = (READ_SCOPE,)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require_team_member(request)


class AgreementActiveView(_SlaReadView):
    """The agreement in force."""

    @extend_schema(
        summary="The agreement in force",
        description="The version of the alignment agreement in force: the MQL definition, each "
        "side's commitments, the business calendar the clocks count in, the escalation policy, "
        "who approved it, and all of it in words. 404 when none is in force. "
        "Scope: `sla:read`. Signing a new version is done on the agreement pages.",
        responses={200: AgreementSerializer},
        examples=[OpenApiExample("In force", value=AGREEMENT_EXAMPLE, response_only=True)]
        + PROBLEM_EXAMPLES,
        tags=["sla"],
    )
    def get(self, request):
        agreement = agreement_active()
        if agreement is None:
            raise exceptions.NotFound("No agreement is in force.")
        agreement = agreement_history().get(pk=agreement.pk)
        return Response(AgreementSerializer(agreement).data)


class AgreementListView(_SlaReadView):
    queryset = Agreement.objects.none()
    serializer_class = AgreementSerializer

    @extend_schema(
        summary="Every version of the agreement",
        description="Drafts, proposals, the version in force and retired ones, newest first, "
        "with limit/offset pagination. Scope: `sla:read`.",
        parameters=[
            OpenApiParameter(
                "status",
                enum=["draft", "proposed", "active", "retired"],
                description="Only versions in this status.",
            )
        ],
        responses={200: AgreementSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Versions",
                value={"count": 1, "next": None, "previous": None, "results": [AGREEMENT_EXAMPLE]},
                response_only=True,
            )
        ]
        + PROBLEM_EXAMPLES,
        tags=["sla"],
    )
    def get(self, request):
        queryset = agreement_history().order_by("-version")
        status = request.query_params.get("status")
        if status is not None:
            if status not in {"draft", "proposed", "active", "retired"}:
                raise exceptions.ValidationError(
                    {"status": ["Choose draft, proposed, active or retired."]}
                )
            queryset = queryset.filter(status=status)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(AgreementSerializer(page, many=True).data)


class AgreementDetailView(_SlaReadView):
    @extend_schema(
        summary="One version of the agreement",
        description="Scope: `sla:read`.",
        responses={200: AgreementSerializer},
        examples=[OpenApiExample("A version", value=AGREEMENT_EXAMPLE, response_only=True)]
        + PROBLEM_EXAMPLES,
        tags=["sla"],
    )
    def get(self, request, pk: int):
        return Response(AgreementSerializer(get_object_or_404(agreement_history(), pk=pk)).data)


# --- clocks -----------------------------------------------------------------------------------


class SlaClockOwnerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class SlaClockSerializer(serializers.ModelSerializer):
    """One promise on one lead: respond (or decide) by `due_at`, counted in business hours."""

    lead = serializers.IntegerField(source="lead_id")
    agreement = serializers.IntegerField(source="agreement_id")
    kind = serializers.ChoiceField(choices=ClockKind.choices)
    status = serializers.ChoiceField(choices=ClockStatus.choices)
    owner = SlaClockOwnerSerializer(allow_null=True)
    running = serializers.BooleanField(help_text="Not ended yet (pending, warned or breached).")

    class Meta:
        model = SlaClock
        fields = (
            "id",
            "lead",
            "kind",
            "status",
            "running",
            "owner",
            "agreement",
            "started_at",
            "warn_at",
            "due_at",
            "ended_at",
            "met_at",
            "cancel_reason",
            "business_seconds",
            "warned_at",
            "breached_at",
            "reassign_at",
            "reassigned_at",
        )


class ClockFilterSerializer(serializers.Serializer):
    lead = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    owner = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=ClockStatus.choices), required=False
    )
    kind = serializers.ChoiceField(choices=ClockKind.choices, required=False)
    running = serializers.BooleanField(required=False, allow_null=True, default=None)
    due_before = AwareDateTimeField(required=False)
    due_after = AwareDateTimeField(required=False)

    def filter(self, queryset: QuerySet[SlaClock]) -> QuerySet[SlaClock]:
        data = self.validated_data
        if "lead" in data:
            queryset = queryset.filter(lead_id=data["lead"])
        if "owner" in data:
            queryset = queryset.filter(owner_id=data["owner"])
        if data.get("status"):
            queryset = queryset.filter(status__in=data["status"])
        if "kind" in data:
            queryset = queryset.filter(kind=data["kind"])
        if data.get("running") is not None:
            queryset = queryset.filter(ended_at__isnull=data["running"])
        if "due_before" in data:
            queryset = queryset.filter(due_at__lt=data["due_before"])
        if "due_after" in data:
            queryset = queryset.filter(due_at__gte=data["due_after"])
        return queryset


class ClockCursorPagination(CursorPagination):
    ordering = ("due_at", "id")
    page_size = CLOCK_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = CLOCK_MAX_PAGE_SIZE
    invalid_cursor_message = "This cursor is not one a page of clocks gave; start without it."

    def decode_cursor(self, request):
        # a cursor the client altered is bad input (400), not a missing page (404)
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None


CLOCK_EXAMPLE = {
    "id": 812,
    "lead": 4411,
    "kind": "response",
    "status": "warned",
    "running": True,
    "owner": {"id": 12, "username": "rita"},
    "agreement": 3,
    "started_at": "2026-11-18T09:12:00Z",
    "warn_at": "2026-11-18T12:12:00Z",
    "due_at": "2026-11-18T13:12:00Z",
    "ended_at": None,
    "met_at": None,
    "cancel_reason": "",
    "business_seconds": None,
    "warned_at": "2026-11-18T12:13:00Z",
    "breached_at": None,
    "reassign_at": None,
    "reassigned_at": None,
}


class ClockListView(_SlaReadView):
    queryset = SlaClock.objects.none()
    serializer_class = SlaClockSerializer
    pagination_class = ClockCursorPagination

    @extend_schema(
        summary="SLA clocks",
        description="The SLA clocks (first touch and decision, one per promise on a lead), most "
        "urgent first (by due time), with cursor pagination: follow `next`. `status` may be "
        "repeated (`?status=pending&status=warned`); `running=true` keeps the clocks not ended "
        "yet. Times are ISO 8601 with an offset; a time without one is refused. "
        "Scope: `sla:read`.",
        parameters=[
            OpenApiParameter("lead", int, description="Clocks of this lead id."),
            OpenApiParameter("owner", int, description="Clocks owned by this user id."),
            OpenApiParameter(
                "status",
                enum=[s.value for s in ClockStatus],
                many=True,
                explode=True,
                description="One or more statuses.",
            ),
            OpenApiParameter("kind", enum=[k.value for k in ClockKind]),
            OpenApiParameter("running", bool, description="Only running (or ended) clocks."),
            OpenApiParameter(
                "due_before", str, description="Due strictly before this time (with offset)."
            ),
            OpenApiParameter("due_after", str, description="Due at or after this time."),
        ],
        responses={200: SlaClockSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Clocks",
                value={
                    "next": "https://pipeline.example.com/api/v1/sla/clocks/?cursor=cD0yMDI2",
                    "previous": None,
                    "results": [CLOCK_EXAMPLE],
                },
                response_only=True,
            )
        ]
        + PROBLEM_EXAMPLES,
        tags=["sla"],
    )
    def get(self, request):
        params = {
            key: request.query_params.getlist(key)
            if key == "status"
            else request.query_params.get(key)
            for key in ClockFilterSerializer().fields
            if key in request.query_params
        }
        filters = ClockFilterSerializer(data=params)
        filters.is_valid(raise_exception=True)
        queryset = filters.filter(SlaClock.objects.select_related("owner"))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SlaClockSerializer(page, many=True).data)


urlpatterns = [
    path("agreement/", AgreementActiveView.as_view(), name="api-sla-agreement"),
    path("agreements/", AgreementListView.as_view(), name="api-sla-agreements"),
    path("agreements/<int:pk>/", AgreementDetailView.as_view(), name="api-sla-agreement-detail"),
    path("clocks/", ClockListView.as_view(), name="api-sla-clocks"),
]
