"""Content requests over REST (content.requests.services does the work):

- GET/POST /api/v1/content-requests/ (newest first, by cursor; `status` filters);
- GET/PATCH /api/v1/content-requests/{id}/ (PATCH: marketing's decision);
- POST/DELETE /api/v1/content-requests/{id}/vote/;
- GET/POST /api/v1/content-requests/{id}/comments/ (oldest first, by cursor).

Reads need `content:read`, writes `content:write`. A request, a vote and a comment are a
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
from alignment.api_base import TextOnlyField, require_team_member
from content.models import (
    Asset,
    ContentRequest,
    ContentRequestComment,
    ContentRequestVote,
    FunnelStage,
    RequestStatus,
)
from content.requests.services import (
    COMMENT_MAX,
    DETAILS_MAX,
    NOTE_MAX,
    TAG_MAX,
    TITLE_MAX,
    content_request_comment,
    content_request_create,
    content_request_unvote,
    content_request_update,
    content_request_vote,
)
from leads.api.leads import api_person
from leads.api.pagination import CURSOR_PARAMETERS, Keyset, keyset_response

READ, WRITE = ("content:read",), ("content:write",)
TAGS = ["content requests"]
_requests_keyset = Keyset("-created_at")
_comments_keyset = Keyset("id")


# --- serializers ---------------------------------------------------------------------------------


class ContentRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    details = serializers.CharField()
    funnel_stage = serializers.CharField(help_text="awareness, consideration, decision or empty.")
    persona = serializers.CharField()
    industry = serializers.CharField()
    status = serializers.CharField(help_text="open, planned, done or declined.")
    status_note = serializers.CharField(help_text="Marketing's last note (why declined, when).")
    asset_id = serializers.IntegerField(
        allow_null=True, help_text="The asset that answers it (done)."
    )
    requested_by = serializers.CharField(
        source="requested_by.username", allow_null=True, default=None
    )
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    vote_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ContentRequestPageSerializer(serializers.Serializer):
    results = ContentRequestSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class ContentRequestCreateSerializer(serializers.Serializer):
    title = TextOnlyField(max_length=TITLE_MAX)
    details = TextOnlyField(max_length=DETAILS_MAX, required=False, allow_blank=True)
    funnel_stage = serializers.ChoiceField(
        choices=FunnelStage.choices, required=False, allow_blank=True
    )
    persona = TextOnlyField(max_length=TAG_MAX, required=False, allow_blank=True)
    industry = TextOnlyField(max_length=TAG_MAX, required=False, allow_blank=True)


class ContentRequestPatchSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    note = TextOnlyField(
        max_length=NOTE_MAX,
        required=False,
        allow_blank=True,
        help_text="Required to decline; replaces the last note.",
    )
    asset_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Required to mark it done: the asset that answers it.",
    )


class VoteSerializer(serializers.Serializer):
    voted = serializers.BooleanField(help_text="Whether the caller's vote is on it now.")
    changed = serializers.BooleanField(help_text="False when it already was (or was not).")
    vote_count = serializers.IntegerField()


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    body = serializers.CharField()
    created_at = serializers.DateTimeField()


class CommentPageSerializer(serializers.Serializer):
    results = CommentSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class CommentCreateSerializer(serializers.Serializer):
    body = TextOnlyField(max_length=COMMENT_MAX)


REQUEST_EXAMPLE = {
    "id": 12,
    "title": "Case study: a bank that moved off spreadsheets",
    "details": "Three deals in banking stall on 'who else like us uses it?'",
    "funnel_stage": "decision",
    "persona": "cfo",
    "industry": "banking",
    "status": "planned",
    "status_note": "Interview booked with Nordbank for next week.",
    "asset_id": None,
    "requested_by": "rick.rep",
    "decided_by": "mia.marketing",
    "vote_count": 5,
    "created_at": "2026-11-30T09:12:00Z",
    "updated_at": "2026-12-01T14:02:00Z",
}
COMMENT_EXAMPLE = {
    "id": 40,
    "author": "sam.rep",
    "body": "Same question at Alpine Credit yesterday.",
    "created_at": "2026-12-01T10:00:00Z",
}
WRITE_NOTE = (
    "A key acting as a person, or a signed-in person, with a role on either team "
    "(a key of its own is refused)."
)


# --- helpers -------------------------------------------------------------------------------------


def _person(request):
    """The person a write is theirs: the signed-in user or the key's acting user."""
    return api_person(
        request,
        "Content requests, votes and comments are a person's: use a key acting as a person.",
    )


def _item(pk: int) -> ContentRequest:
    return get_object_or_404(
        ContentRequest.objects.select_related("requested_by", "decided_by"), pk=pk
    )


# --- views ---------------------------------------------------------------------------------------


class ContentRequestListView(APIView):
    parser_classes = [JSONParser]
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="content_requests_list",
        summary="List content requests",
        description="Newest first, a cursor page at a time; `status` filters (open, planned, "
        "done, declined). `vote_count` says how many want it. Scope: `content:read`.",
        parameters=[
            OpenApiParameter(
                "status", type=str, enum=RequestStatus.values, required=False, description="Filter."
            ),
            *CURSOR_PARAMETERS,
        ],
        responses={200: ContentRequestPageSerializer},
        examples=[
            OpenApiExample(
                "Requests",
                value={"results": [REQUEST_EXAMPLE], "next": None, "next_cursor": None},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def get(self, request):
        require_team_member(request)
        qs = ContentRequest.objects.select_related("requested_by", "decided_by")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in RequestStatus.values:
                raise exceptions.ValidationError(
                    {"status": [f"One of: {', '.join(RequestStatus.values)}."]}
                )
            qs = qs.filter(status=wanted)
        return keyset_response(request, _requests_keyset, qs, ContentRequestSerializer)

    @extend_schema(
        operation_id="content_requests_create",
        summary="Ask for content",
        description="A request for content the library does not have yet; the marketing "
        "managers are notified and a `content_request.created` event is recorded. "
        f"{WRITE_NOTE} Scope: `content:write`.",
        request=ContentRequestCreateSerializer,
        responses={201: ContentRequestSerializer},
        examples=[
            OpenApiExample(
                "A request",
                value={
                    "title": "Case study: a bank that moved off spreadsheets",
                    "details": "Three deals in banking stall on 'who else like us uses it?'",
                    "funnel_stage": "decision",
                    "persona": "cfo",
                    "industry": "banking",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created",
                value={**REQUEST_EXAMPLE, "status": "open", "status_note": "", "vote_count": 0},
                response_only=True,
                status_codes=["201"],
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def post(self, request):
        body = ContentRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        made = content_request_create(by=_person(request), **body.validated_data)
        return Response(
            ContentRequestSerializer(_item(made.pk)).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api-content-request", args=[made.pk])},
        )


class ContentRequestDetailView(APIView):
    parser_classes = [JSONParser]
    required_scopes = {"GET": READ, "PATCH": WRITE}

    @extend_schema(
        operation_id="content_requests_retrieve",
        summary="Read a content request",
        description="One request with its status and votes. Scope: `content:read`.",
        responses={200: ContentRequestSerializer},
        examples=[OpenApiExample("Request", value=REQUEST_EXAMPLE), *PROBLEM_EXAMPLES],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        require_team_member(request)
        return Response(ContentRequestSerializer(_item(pk)).data)

    @extend_schema(
        operation_id="content_requests_partial_update",
        summary="Plan, finish, decline or reopen a content request",
        description="Marketing's decision: `planned`, `done` (with the `asset_id` that answers "
        "it), `declined` (with a `note` saying why) or `open` again. Planned, done and declined "
        "notify the requester and the voters; every change records a "
        "`content_request.updated` event. A person with a marketing role or an admin. "
        "Scope: `content:write`.",
        request=ContentRequestPatchSerializer,
        responses={200: ContentRequestSerializer},
        examples=[
            OpenApiExample(
                "Done", value={"status": "done", "asset_id": 31, "note": ""}, request_only=True
            ),
            OpenApiExample(
                "Changed",
                value={**REQUEST_EXAMPLE, "status": "done", "asset_id": 31},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def patch(self, request, pk: int):
        item = _item(pk)
        body = ContentRequestPatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        asset = None
        if data.get("asset_id") is not None:
            asset = Asset.objects.filter(pk=data["asset_id"]).first()
            if asset is None:
                raise exceptions.ValidationError({"asset_id": ["There is no asset with this id."]})
        content_request_update(
            request=item,
            by=_person(request),
            status=data["status"],
            note=data.get("note", ""),
            asset=asset,
        )
        return Response(ContentRequestSerializer(_item(pk)).data)


class ContentRequestVoteView(APIView):
    required_scopes = {"POST": WRITE, "DELETE": WRITE}

    def _answer(self, item: ContentRequest, user, changed: bool) -> Response:
        voted = ContentRequestVote.objects.filter(request=item, user=user).exists()
        return Response({"voted": voted, "changed": changed, "vote_count": item.vote_count})

    @extend_schema(
        operation_id="content_requests_vote",
        summary="Vote for a content request",
        description="One vote per person; voting again changes nothing (`changed: false`). Open "
        f"and planned requests take votes. {WRITE_NOTE} Scope: `content:write`.",
        request=None,
        responses={200: VoteSerializer},
        examples=[
            OpenApiExample(
                "Voted",
                value={"voted": True, "changed": True, "vote_count": 6},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def post(self, request, pk: int):
        user = _person(request)
        item = _item(pk)
        changed = content_request_vote(request=item, by=user)
        return self._answer(item, user, changed)

    @extend_schema(
        operation_id="content_requests_unvote",
        summary="Take back a vote",
        description=f"Removes the caller's vote, if any. {WRITE_NOTE} Scope: `content:write`.",
        responses={200: VoteSerializer},
        examples=[
            OpenApiExample(
                "Taken back",
                value={"voted": False, "changed": True, "vote_count": 5},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def delete(self, request, pk: int):
        user = _person(request)
        item = _item(pk)
        changed = content_request_unvote(request=item, by=user)
        return self._answer(item, user, changed)


class ContentRequestCommentsView(APIView):
    parser_classes = [JSONParser]
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="content_requests_comments_list",
        summary="List a content request's comments",
        description="Oldest first, a cursor page at a time. Scope: `content:read`.",
        parameters=CURSOR_PARAMETERS,
        responses={200: CommentPageSerializer},
        examples=[
            OpenApiExample(
                "Comments",
                value={"results": [COMMENT_EXAMPLE], "next": None, "next_cursor": None},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        require_team_member(request)
        item = _item(pk)
        qs = ContentRequestComment.objects.filter(request=item).select_related("author")
        return keyset_response(request, _comments_keyset, qs, CommentSerializer)

    @extend_schema(
        operation_id="content_requests_comments_create",
        summary="Comment on a content request",
        description=f"{WRITE_NOTE} Scope: `content:write`.",
        request=CommentCreateSerializer,
        responses={201: CommentSerializer},
        examples=[
            OpenApiExample("A comment", value={"body": COMMENT_EXAMPLE["body"]}, request_only=True),
            OpenApiExample(
                "Added", value=COMMENT_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=TAGS,
    )
    def post(self, request, pk: int):
        body = CommentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = _person(request)
        comment = content_request_comment(
            request=_item(pk), by=user, body=body.validated_data["body"]
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("content-requests/", ContentRequestListView.as_view(), name="api-content-requests"),
    path(
        "content-requests/<int:pk>/", ContentRequestDetailView.as_view(), name="api-content-request"
    ),
    path(
        "content-requests/<int:pk>/vote/",
        ContentRequestVoteView.as_view(),
        name="api-content-request-vote",
    ),
    path(
        "content-requests/<int:pk>/comments/",
        ContentRequestCommentsView.as_view(),
        name="api-content-request-comments",
    ),
]
