"""Voice of the prospect over REST: GET/POST /api/v1/objections/, GET/PATCH
/api/v1/objections/{id}/. Scopes `feedback:read` and `feedback:write`. Logging is a person's (a
session, or a key acting as the rep or a sales manager); PATCH links the asset that answers an
objection (marketing). Both go through content.voice.services, like the pages."""

from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES
from alignment.api_base import AwareDateTimeField, require_team_member
from alignment.idempotency import idempotent
from alignment.lib.errors import DomainError
from content.models import Asset, Objection, ObjectionCategory, ObjectionKind
from content.voice.services import COMPETITOR_MAX, TEXT_MAX, objection_answer, objection_log
from leads.api.leads import api_person
from leads.api.pagination import CURSOR_PARAMETERS, MAX_ID, Keyset, keyset_response
from leads.models import Lead

READ, WRITE = ("feedback:read",), ("feedback:write",)
# newest logged first: ids grow with logged_at (an objection is always logged "now")
ORDER = Keyset("-id")

# --- serializers ---------------------------------------------------------------------------------


class ObjectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = serializers.IntegerField(source="lead_id")
    campaign = serializers.IntegerField(
        source="campaign_id", allow_null=True, help_text="The lead's campaign when it was logged."
    )
    kind = serializers.ChoiceField(choices=ObjectionKind.choices)
    category = serializers.ChoiceField(choices=ObjectionCategory.choices)
    competitor = serializers.CharField()
    text = serializers.CharField(help_text="What the prospect said, in their words.")
    logged_by = serializers.CharField(source="logged_by.username", allow_null=True)
    logged_at = serializers.DateTimeField()
    answer = serializers.IntegerField(
        source="answer_id", allow_null=True, help_text="The library asset that answers it."
    )
    answered_by = serializers.CharField(source="answered_by.username", allow_null=True)


class ObjectionPageSerializer(serializers.Serializer):
    results = ObjectionSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class ObjectionInputSerializer(serializers.Serializer):
    lead = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    kind = serializers.ChoiceField(
        choices=ObjectionKind.choices, required=False, default=ObjectionKind.OBJECTION
    )
    category = serializers.ChoiceField(choices=ObjectionCategory.choices)
    competitor = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=COMPETITOR_MAX,
        default="",
        help_text="The competitor they named, if any (any category).",
    )
    text = serializers.CharField(max_length=TEXT_MAX, help_text="In the prospect's words.")


class ObjectionPatchSerializer(serializers.Serializer):
    answer = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        allow_null=True,
        help_text="A sales-ready asset's id, or null to unlink.",
    )


class ObjectionFiltersSerializer(serializers.Serializer):
    lead = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    category = serializers.ChoiceField(choices=ObjectionCategory.choices, required=False)
    campaign = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    since = AwareDateTimeField(required=False)
    until = AwareDateTimeField(required=False)


# --- examples ------------------------------------------------------------------------------------

OBJECTION_EXAMPLE = {
    "id": 31,
    "lead": 4411,
    "campaign": 7,
    "kind": "objection",
    "category": "competitor",
    "competitor": "Acme",
    "text": "Acme gives us the same for half the price.",
    "logged_by": "rita",
    "logged_at": "2026-11-30T15:04:00Z",
    "answer": None,
    "answered_by": None,
}
FILTER_PARAMETERS = [
    OpenApiParameter(
        "lead", type={"type": "integer", "minimum": 1, "maximum": MAX_ID}, required=False
    ),
    OpenApiParameter("category", enum=ObjectionCategory.values, required=False),
    OpenApiParameter(
        "campaign",
        type={"type": "integer", "minimum": 1, "maximum": MAX_ID},
        required=False,
        description="The campaign it was logged under.",
    ),
    OpenApiParameter(
        "since",
        type={"type": "string", "format": "date-time"},
        required=False,
        description="Logged at or after (ISO 8601 with its offset).",
    ),
    OpenApiParameter(
        "until",
        type={"type": "string", "format": "date-time"},
        required=False,
        description="Logged before (ISO 8601 with its offset).",
    ),
    *CURSOR_PARAMETERS,
]


def _objections():
    return Objection.objects.select_related("logged_by", "answered_by")


def _person(request, what: str):
    return api_person(request, f"{what} is a person's: use a key acting as one.")


def _answer(objection: Objection, status: int = 200) -> Response:
    return Response(ObjectionSerializer(_objections().get(pk=objection.pk)).data, status=status)


def _invalid(exc: DomainError, fields: tuple[str, ...]) -> serializers.ValidationError:
    field = exc.field if exc.field in fields else "non_field_errors"
    return serializers.ValidationError({field: [exc.message]})


# --- views ---------------------------------------------------------------------------------------


class ObjectionListView(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="objections_list",
        summary="List questions and objections",
        description="What prospects said on calls, newest first, in cursor pages: follow "
        "`next` until it is null. Filter by `lead`, `category`, `campaign` (the one it was "
        "logged under) and the time it was logged (`since`, `until`). Scope: `feedback:read`.",
        parameters=FILTER_PARAMETERS,
        responses={200: ObjectionPageSerializer},
        examples=[
            OpenApiExample(
                "A page",
                value={"results": [OBJECTION_EXAMPLE], "next": None, "next_cursor": None},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["objections"],
    )
    def get(self, request):
        require_team_member(request)
        blank = [
            name
            for name in (*ObjectionFiltersSerializer().fields, "page_size")
            if name in request.query_params and not request.query_params[name].strip()
        ]
        if blank:
            raise serializers.ValidationError(
                {name: ["Give a value, or leave the parameter out."] for name in blank}
            )
        filters = ObjectionFiltersSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = _objections()
        if "lead" in f:
            qs = qs.filter(lead_id=f["lead"])
        if "category" in f:
            qs = qs.filter(category=f["category"])
        if "campaign" in f:
            qs = qs.filter(campaign_id=f["campaign"])
        if "since" in f:
            qs = qs.filter(logged_at__gte=f["since"])
        if "until" in f:
            qs = qs.filter(logged_at__lt=f["until"])
        return keyset_response(request, ORDER, qs, ObjectionSerializer)

    @extend_schema(
        operation_id="objections_log",
        summary="Log a question or objection",
        description="What a prospect said on a call: its kind (`question` or `objection`), "
        "its category, optionally the competitor named, and the words. Logged under the "
        "lead's current campaign; an `objection.logged` event. A rep logs on a lead he owns, a "
        "sales manager or an admin on any. Scope: `feedback:write`, with a key acting as a "
        "person.",
        request=ObjectionInputSerializer,
        responses={201: ObjectionSerializer},
        examples=[
            OpenApiExample(
                "A competitor objection",
                value={
                    "lead": 4411,
                    "kind": "objection",
                    "category": "competitor",
                    "competitor": "Acme",
                    "text": "Acme gives us the same for half the price.",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Logged", value=OBJECTION_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["objections"],
    )
    @idempotent
    def post(self, request):
        by = _person(request, "Logging what a prospect said")
        data = ObjectionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        lead = Lead.objects.filter(pk=values["lead"]).first()
        if lead is None:
            raise serializers.ValidationError({"lead": [f"There is no lead {values['lead']}."]})
        try:
            objection = objection_log(
                lead=lead,
                by=by,
                kind=values["kind"],
                category=values["category"],
                competitor=values["competitor"],
                text=values["text"],
            )
        except DomainError as exc:
            if exc.field is None:
                raise exceptions.PermissionDenied(exc.message) from None
            raise _invalid(exc, ("lead", "kind", "category", "competitor", "text")) from None
        return _answer(objection, status=201)


class ObjectionDetailView(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    def objection(self, pk: int) -> Objection:
        found = _objections().filter(pk=pk).first() if 0 < pk <= MAX_ID else None
        if found is None:
            raise exceptions.NotFound(f"There is no objection {pk}.")
        return found

    @extend_schema(
        operation_id="objections_retrieve",
        summary="Read a question or objection",
        description="One question or objection. Scope: `feedback:read`.",
        responses={200: ObjectionSerializer},
        examples=[OpenApiExample("Objection", value=OBJECTION_EXAMPLE), *PROBLEM_EXAMPLES],
        tags=["objections"],
    )
    def get(self, request, pk: int):
        require_team_member(request)
        return Response(ObjectionSerializer(self.objection(pk)).data)

    @extend_schema(
        operation_id="objections_answer",
        summary="Link the content that answers it",
        description="`answer`: the id of a sales-ready library asset that answers this "
        "objection, or null to unlink. The asset is then suggested on leads where an objection "
        "of the same category (and competitor) is logged; an `objection.answered` event. "
        "Marketing (and admins) only. Scope: `feedback:write`, with a key acting as a person.",
        request=ObjectionPatchSerializer,
        responses={200: ObjectionSerializer},
        examples=[
            OpenApiExample("Link an asset", value={"answer": 12}, request_only=True),
            OpenApiExample(
                "Answered",
                value={**OBJECTION_EXAMPLE, "answer": 12, "answered_by": "mona"},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["objections"],
    )
    def patch(self, request, pk: int):
        by = _person(request, "Linking an answer")
        objection = self.objection(pk)
        data = ObjectionPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset_id = data.validated_data["answer"]
        asset = None
        if asset_id is not None:
            asset = Asset.objects.filter(pk=asset_id).first()
            if asset is None:
                raise serializers.ValidationError({"answer": [f"There is no asset {asset_id}."]})
        try:
            objection = objection_answer(objection=objection, asset_or_none=asset, by=by)
        except DomainError as exc:
            if exc.field is None:
                raise exceptions.PermissionDenied(exc.message) from None
            raise _invalid(exc, ("answer",)) from None
        return _answer(objection)


urlpatterns = [
    path("objections/", ObjectionListView.as_view(), name="api-objections"),
    path("objections/<int:pk>/", ObjectionDetailView.as_view(), name="api-objection"),
]
