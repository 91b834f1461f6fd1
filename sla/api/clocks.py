"""The SLA clocks over REST: filtered, most urgent first, cursor pages (`sla:read`)."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.pagination import CursorPagination

from alignment.api import PROBLEM_EXAMPLES
from alignment.api_base import AwareDateTimeField, TeamReadView
from sla.clocks.models import ClockKind, ClockStatus, SlaClock

READ_SCOPE = "sla:read"
CLOCK_PAGE_SIZE = 50
CLOCK_MAX_PAGE_SIZE = 500
MAX_ID = 2**63 - 1


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
    # true or false; "null" or any other word is a 400 (not the same as leaving it out)
    running = serializers.BooleanField(required=False, default=None)
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

    def get_page_size(self, request):
        # a page size that is not a whole number is a 400 (DRF would use the default)
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and int(raw) >= 1):
            raise exceptions.ValidationError({"page_size": ["A whole number from 1."]})
        return super().get_page_size(request)

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


class ClockListView(TeamReadView):
    required_scopes = (READ_SCOPE,)
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
