"""Lead flags over REST (content.flags.services does the work):

- GET/POST /api/v1/flags/ (newest first, by cursor; `status`, `lead`, `reason` filter);
- GET /api/v1/flags/{id}/ (with its thread);
- POST /api/v1/flags/{id}/messages/ (a reply in the thread);
- POST /api/v1/flags/{id}/resolve/ (marketing's outcome).

Reads need `feedback:read`, writes `feedback:write`. A flag, a message and a resolution are a
person's: a write needs a signed-in person or a key acting as one (a key of its own is refused
with a 403), held to that person's role."""

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES
from alignment.api_base import require_team_member
from content.flags.services import TEXT_MAX, flag_comment, flag_raise, flag_resolve
from content.models import FlagMessage, FlagOutcome, FlagReason, FlagStatus, LeadFlag
from leads.api.leads import api_person
from leads.api.pagination import CURSOR_PARAMETERS, MAX_ID, Keyset, keyset_response
from leads.models import Lead

READ, WRITE = ("feedback:read",), ("feedback:write",)
TAGS = ["lead flags"]
_flags_keyset = Keyset("-id")


# --- serializers ---------------------------------------------------------------------------------


class FlagMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    body = serializers.CharField()
    created_at = serializers.DateTimeField()


class FlagSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead_id = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=FlagReason.choices)
    comment = serializers.CharField(help_text="The flagger's words: the thread's first message.")
    raised_by = serializers.CharField(source="raised_by.username", allow_null=True, default=None)
    raised_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=FlagStatus.choices)
    outcome = serializers.CharField(
        help_text="fixed, rerouted, merged, explained, declined or empty."
    )
    resolution = serializers.CharField(help_text="Marketing's note on the outcome.")
    resolved_by = serializers.CharField(
        source="resolved_by.username", allow_null=True, default=None
    )
    resolved_at = serializers.DateTimeField(allow_null=True)


class FlagDetailSerializer(FlagSerializer):
    messages = FlagMessageSerializer(many=True, source="messages.all")


class FlagPageSerializer(serializers.Serializer):
    results = FlagSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class FlagCreateSerializer(serializers.Serializer):
    lead = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The lead's id.")
    reason = serializers.ChoiceField(choices=FlagReason.choices)
    comment = serializers.CharField(max_length=TEXT_MAX)


class FlagMessageCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=TEXT_MAX)


class FlagResolveSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=FlagOutcome.choices)
    resolution = serializers.CharField(
        max_length=TEXT_MAX,
        required=False,
        allow_blank=True,
        help_text="Required for `explained` and `declined`: why nothing changes.",
    )


MESSAGE_EXAMPLE = {
    "id": 71,
    "author": "mia.marketing",
    "body": "The form maps Bavaria to the DACH-North pool; fixing the rule now.",
    "created_at": "2026-12-01T10:20:00Z",
}
FLAG_EXAMPLE = {
    "id": 18,
    "lead_id": 4211,
    "reason": "wrong_routing",
    "comment": "Munich lead, but routed to the Hamburg team.",
    "raised_by": "rick.rep",
    "raised_at": "2026-12-01T09:05:00Z",
    "status": "open",
    "outcome": "",
    "resolution": "",
    "resolved_by": None,
    "resolved_at": None,
}
WRITE_NOTE = (
    "A key acting as a person, or a signed-in person (a key of its own is refused), held to that "
    "person's role."
)


# --- helpers -------------------------------------------------------------------------------------


def _person(request):
    return api_person(
        request,
        "Flags, their messages and resolutions are a person's: use a key acting as a person.",
    )


def _flags():
    return LeadFlag.objects.select_related("raised_by", "resolved_by")


def _item(pk: int) -> LeadFlag:
    if not 0 < pk <= MAX_ID:
        raise exceptions.NotFound()
    return get_object_or_404(
        _flags().prefetch_related("messages__author"),
        pk=pk,
    )


def _choice(request, name: str, values) -> str:
    wanted = request.query_params.get(name) or ""
    if wanted and wanted not in values:
        raise exceptions.ValidationError({name: [f"One of: {', '.join(values)}."]})
    return wanted


# --- views ---------------------------------------------------------------------------------------


class FlagListView(APIView):
    parser_classes = [JSONParser]
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="flags_list",
        summary="List lead flags",
        description="Newest first, a cursor page at a time; `status` (open, resolved), `lead` "
        "(a lead's id) and `reason` filter. Scope: `feedback:read`.",
        parameters=[
            OpenApiParameter(
                "status", type=str, enum=FlagStatus.values, required=False, description="Filter."
            ),
            OpenApiParameter(
                "reason", type=str, enum=FlagReason.values, required=False, description="Filter."
            ),
            OpenApiParameter(
                "lead",
                type={"type": "integer", "minimum": 1, "maximum": MAX_ID},
                required=False,
                description="Only this lead's flags.",
            ),
            *CURSOR_PARAMETERS,
        ],
        responses={200: FlagPageSerializer},
        examples=[
            OpenApiExample(
                "Flags",
                value={"results": [FLAG_EXAMPLE], "next": None, "next_cursor": None},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def get(self, request):
        require_team_member(request)
        qs = _flags()
        wanted = _choice(request, "status", FlagStatus.values)
        if wanted:
            qs = qs.filter(status=wanted)
        reason = _choice(request, "reason", FlagReason.values)
        if reason:
            qs = qs.filter(reason=reason)
        lead = request.query_params.get("lead")
        if lead not in (None, ""):
            try:
                lead_id = int(lead)
            except ValueError:
                raise exceptions.ValidationError(
                    {"lead": ["A lead's id, a whole number."]}
                ) from None
            if not 0 < lead_id <= MAX_ID:
                raise exceptions.ValidationError({"lead": ["A lead's id, a whole number."]})
            qs = qs.filter(lead_id=lead_id)
        return keyset_response(request, _flags_keyset, qs, FlagSerializer)

    @extend_schema(
        operation_id="flags_create",
        summary="Flag a lead for marketing",
        description="A problem with a lead (wrong data, wrong routing, a duplicate, an unclear "
        "source); the campaign's marketing owner (or the marketing managers) and the lead's owner "
        "are notified and a `flag.raised` event is recorded. A rep flags a lead he owns, a sales "
        "manager or an admin any lead; one open flag per lead and reason. It never stops an SLA "
        f"clock. {WRITE_NOTE} Scope: `feedback:write`.",
        request=FlagCreateSerializer,
        responses={201: FlagDetailSerializer},
        examples=[
            OpenApiExample(
                "A flag",
                value={
                    "lead": 4211,
                    "reason": "wrong_routing",
                    "comment": FLAG_EXAMPLE["comment"],
                },
                request_only=True,
            ),
            OpenApiExample(
                "Raised",
                value={**FLAG_EXAMPLE, "messages": []},
                response_only=True,
                status_codes=["201"],
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def post(self, request):
        body = FlagCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = _person(request)
        lead = Lead.objects.filter(pk=data["lead"]).first()
        if lead is None:
            raise exceptions.ValidationError({"lead": ["There is no lead with this id."]})
        made = flag_raise(lead=lead, by=user, reason=data["reason"], comment=data["comment"])
        return Response(
            FlagDetailSerializer(_item(made.pk)).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api-flag", args=[made.pk])},
        )


class FlagDetailView(APIView):
    required_scopes = {"GET": READ}

    @extend_schema(
        operation_id="flags_retrieve",
        summary="Read a lead flag with its thread",
        description="The flag and its messages, oldest first (the flag's `comment` is the "
        "thread's first words). Scope: `feedback:read`.",
        responses={200: FlagDetailSerializer},
        examples=[
            OpenApiExample("Flag", value={**FLAG_EXAMPLE, "messages": [MESSAGE_EXAMPLE]}),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        require_team_member(request)
        return Response(FlagDetailSerializer(_item(pk)).data)


class FlagMessagesView(APIView):
    parser_classes = [JSONParser]
    required_scopes = {"POST": WRITE}

    @extend_schema(
        operation_id="flags_messages_create",
        summary="Reply in a flag's thread",
        description="The thread's participants (the lead's owner, the campaign's marketing "
        "owner, the flagger), marketing, sales managers and admins write in an open flag's "
        "thread; every other participant and earlier writer is notified and a `flag.commented` "
        f"event is recorded. A resolved flag takes none. {WRITE_NOTE} Scope: `feedback:write`.",
        request=FlagMessageCreateSerializer,
        responses={201: FlagMessageSerializer},
        examples=[
            OpenApiExample("A reply", value={"body": MESSAGE_EXAMPLE["body"]}, request_only=True),
            OpenApiExample(
                "Added", value=MESSAGE_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def post(self, request, pk: int):
        body = FlagMessageCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = _person(request)
        message = flag_comment(flag=_item(pk), by=user, body=body.validated_data["body"])
        message = FlagMessage.objects.select_related("author").get(pk=message.pk)
        return Response(FlagMessageSerializer(message).data, status=status.HTTP_201_CREATED)


class FlagResolveView(APIView):
    parser_classes = [JSONParser]
    required_scopes = {"POST": WRITE}

    @extend_schema(
        operation_id="flags_resolve",
        summary="Resolve a lead flag",
        description="Marketing's outcome: fixed, rerouted, merged, explained or declined (the "
        "last two with a `resolution` saying why). The flagger and the lead's owner are notified "
        "and a `flag.resolved` event is recorded. A person with a marketing role or an admin. "
        "Scope: `feedback:write`.",
        request=FlagResolveSerializer,
        responses={200: FlagDetailSerializer},
        examples=[
            OpenApiExample(
                "Rerouted",
                value={"outcome": "rerouted", "resolution": "Routing rule fixed; now with Anna."},
                request_only=True,
            ),
            OpenApiExample(
                "Resolved",
                value={
                    **FLAG_EXAMPLE,
                    "status": "resolved",
                    "outcome": "rerouted",
                    "resolution": "Routing rule fixed; now with Anna.",
                    "resolved_by": "mia.marketing",
                    "resolved_at": "2026-12-01T11:00:00Z",
                    "messages": [MESSAGE_EXAMPLE],
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def post(self, request, pk: int):
        body = FlagResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = _person(request)
        data = body.validated_data
        flag_resolve(
            flag=_item(pk), by=user, outcome=data["outcome"], resolution=data.get("resolution", "")
        )
        return Response(FlagDetailSerializer(_item(pk)).data)


urlpatterns = [
    path("flags/", FlagListView.as_view(), name="api-flags"),
    path("flags/<int:pk>/", FlagDetailView.as_view(), name="api-flag"),
    path("flags/<int:pk>/messages/", FlagMessagesView.as_view(), name="api-flag-messages"),
    path("flags/<int:pk>/resolve/", FlagResolveView.as_view(), name="api-flag-resolve"),
]
