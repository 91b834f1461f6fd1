"""The alignment agreement over REST: the version in force and every version (`sla:read`)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from alignment.api import PROBLEM_EXAMPLES
from alignment.api_base import SignOffApprovalSerializer, TeamReadView
from alignment.lib.business_time import Calendar, CalendarError
from alignment.signoff import VersionStatus
from sla.models import Agreement
from sla.selectors import agreement_active, agreement_history, agreement_summary, calendar_words

READ_SCOPE = "sla:read"


class AgreementScoringModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    mql_total = serializers.IntegerField()
    mql_fit = serializers.IntegerField()


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
    approvals = SignOffApprovalSerializer(many=True)
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


class AgreementActiveView(TeamReadView):
    required_scopes = (READ_SCOPE,)
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


class AgreementListView(TeamReadView):
    required_scopes = (READ_SCOPE,)
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


class AgreementDetailView(TeamReadView):
    required_scopes = (READ_SCOPE,)

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
