"""The content library over REST: list and add assets (a link as JSON, or an upload as
multipart), read and change one, share one with a lead, and the assets suggested for a lead.

Reads need `content:read`, writes `content:write`. Adding and changing assets is marketing's (a
key acting as a marketer, a marketing manager or an admin); sharing is sales' (a key acting as the
lead's rep or a sales manager), as in the app. A key acting as nobody may read only."""

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from alignment.api import PROBLEM_EXAMPLES
from alignment.api_base import require_team_member
from content.api.asset_serializers import (
    ASSET_EXAMPLE,
    ASSET_INPUT_EXAMPLE,
    AssetPageSerializer,
    AssetQuerySerializer,
    AssetSerializer,
    AssetWriteSerializer,
    ShareResultSerializer,
    ShareSerializer,
    SuggestionsSerializer,
)
from content.library import AssetFilter, assets_filtered
from content.models import Asset
from content.services import ALLOWED, asset_create, asset_update
from content.sharing import asset_share
from content.suggestions import suggested_assets
from leads.api.leads import api_person
from leads.api.pagination import CURSOR_PARAMETERS, Keyset, keyset_response
from leads.models import Lead

READ = ("content:read",)
WRITE = ("content:write",)
ORDER = Keyset("-updated_at")
MAX_SUGGESTIONS = 20
# a query parameter with choices is one of them or left out (an empty value is a 400)
CHOICE_PARAMS = ("stage", "kind", "sales_ready")


def _asset_or_404(pk: int) -> Asset:
    return get_object_or_404(Asset.objects.select_related("owner"), pk=pk)


def _write_data(body: AssetWriteSerializer) -> tuple[dict, object]:
    data = dict(body.validated_data)
    return data, data.pop("file", None)


def _actor(request):
    return api_person(
        request, "This needs a person: use a key acting as a user whose role may do it."
    )


# --- the views -----------------------------------------------------------------------------------


class AssetListView(GenericAPIView):
    """GET the library (filtered, by cursor); POST a new asset."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]
    required_scopes = {"GET": READ, "POST": WRITE}
    queryset = Asset.objects.none()
    serializer_class = AssetSerializer

    @extend_schema(
        operation_id="assets_list",
        summary="List the content library",
        description="Assets, most recently changed first, a page at a time: follow `next` (or "
        "send `next_cursor` as `cursor`) until it is null. Filters combine with AND: `stage` (the "
        "funnel stage), `kind`, `industry` and `persona` (one tag each, case-insensitive), "
        "`sales_ready`, and `q` (words in the title). Scope: `content:read`.",
        parameters=[AssetQuerySerializer, *CURSOR_PARAMETERS],
        responses={200: AssetPageSerializer},
        examples=[
            OpenApiExample(
                "A page",
                value={"results": [ASSET_EXAMPLE], "next": None, "next_cursor": None},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["content"],
    )
    def get(self, request):
        require_team_member(request)
        blank = [name for name in CHOICE_PARAMS if request.query_params.get(name, None) == ""]
        if blank:
            raise serializers.ValidationError(
                {name: ["Leave it out, or pick one."] for name in blank}
            )
        query = AssetQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        ready = params.pop("sales_ready", None)
        params["sales_ready"] = None if ready is None else ready == "true"
        return keyset_response(
            request, ORDER, assets_filtered(AssetFilter(**params)), AssetSerializer
        )

    @extend_schema(
        operation_id="assets_create",
        summary="Add an asset",
        description="A link as JSON (`url`), or an upload as multipart/form-data (`file`, "
        f"checked by size and by its content: {ALLOWED}); one or the other. Tags are stored "
        "case-folded. The key must act as marketing or an admin; the asset is theirs. Records "
        "`asset.created`. Scope: `content:write`.",
        request={
            "application/json": AssetWriteSerializer,
            "multipart/form-data": AssetWriteSerializer,
        },
        responses={201: AssetSerializer},
        examples=[
            OpenApiExample("A link", value=ASSET_INPUT_EXAMPLE, request_only=True),
            OpenApiExample("Added", value=ASSET_EXAMPLE, response_only=True, status_codes=["201"]),
            *PROBLEM_EXAMPLES,
        ],
        tags=["content"],
    )
    def post(self, request):
        body = AssetWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, upload = _write_data(body)
        asset = asset_create(by=_actor(request), data=data, upload=upload)
        return Response(
            AssetSerializer(_asset_or_404(asset.pk)).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api-asset", kwargs={"pk": asset.pk}, request=request)},
        )


class AssetDetailView(GenericAPIView):
    """GET one asset; PATCH it."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]
    required_scopes = {"GET": READ, "PATCH": WRITE}
    queryset = Asset.objects.none()
    serializer_class = AssetSerializer

    @extend_schema(
        operation_id="assets_retrieve",
        summary="Read an asset",
        description="Scope: `content:read`.",
        responses={200: AssetSerializer},
        examples=[
            OpenApiExample("An asset", value=ASSET_EXAMPLE, response_only=True),
            *PROBLEM_EXAMPLES,
        ],
        tags=["content"],
    )
    def get(self, request, pk: int):
        require_team_member(request)
        return Response(AssetSerializer(_asset_or_404(pk)).data)

    @extend_schema(
        operation_id="assets_partial_update",
        summary="Change an asset",
        description="Changes the fields sent and no others. A new `file` (multipart) replaces "
        "the link, a new `url` the file. Unmarking `sales_ready` stops reps sharing it. The key "
        "must act as marketing or an admin. Records `asset.updated` with the fields changed. "
        "Scope: `content:write`.",
        request={
            "application/json": AssetWriteSerializer(partial=True),
            "multipart/form-data": AssetWriteSerializer(partial=True),
        },
        responses={200: AssetSerializer},
        examples=[
            OpenApiExample("Sales ready now", value={"sales_ready": True}, request_only=True),
            OpenApiExample("Changed", value=ASSET_EXAMPLE, response_only=True),
            *PROBLEM_EXAMPLES,
        ],
        tags=["content"],
    )
    def patch(self, request, pk: int):
        asset = _asset_or_404(pk)
        body = AssetWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data, upload = _write_data(body)
        asset_update(asset=asset, by=_actor(request), data=data, upload=upload)
        return Response(AssetSerializer(_asset_or_404(pk)).data)


class AssetShareView(GenericAPIView):
    parser_classes = [JSONParser]
    required_scopes = {"POST": WRITE}
    queryset = Asset.objects.none()
    serializer_class = ShareSerializer

    @extend_schema(
        operation_id="assets_share",
        summary="Share an asset with a lead",
        description="Records a `content_shared` touchpoint on the lead (its metadata: `asset_id`, "
        "`title`, `url`, `note`), the asset's use and a `content.shared` event, at once. The "
        "asset must be sales ready; the key must act as the lead's rep or a sales manager (or an "
        "admin). Sharing the same asset again is another share. Sharing is not a first touch: "
        "it does not stop an SLA clock. Scope: `content:write`.",
        request=ShareSerializer,
        responses={201: ShareResultSerializer},
        examples=[
            OpenApiExample(
                "Share", value={"lead": 4411, "note": "After our call"}, request_only=True
            ),
            OpenApiExample(
                "Shared",
                value={
                    "touchpoint_id": 90211,
                    "asset_id": 12,
                    "lead_id": 4411,
                    "occurred_at": "2026-12-01T10:02:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["content"],
    )
    def post(self, request, pk: int):
        asset = _asset_or_404(pk)
        body = ShareSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lead = Lead.objects.filter(pk=body.validated_data["lead"]).first()
        if lead is None:
            raise serializers.ValidationError(
                {"lead": [f"There is no lead {body.validated_data['lead']}."]}
            )
        touchpoint = asset_share(
            asset=asset, lead=lead, by=_actor(request), note=body.validated_data["note"]
        )
        return Response(
            ShareResultSerializer(
                {
                    "touchpoint_id": touchpoint.pk,
                    "asset_id": asset.pk,
                    "lead_id": touchpoint.lead_id,
                    "occurred_at": touchpoint.occurred_at,
                }
            ).data,
            status=status.HTTP_201_CREATED,
        )


class LeadSuggestedContentView(GenericAPIView):
    required_scopes = {"GET": READ}
    queryset = Asset.objects.none()
    serializer_class = SuggestionsSerializer

    @extend_schema(
        operation_id="leads_suggested_content",
        summary="Content suggested for a lead",
        description="The sales-ready assets that match the lead (its industry, its title against "
        "the personas, its stage against the funnel stage, answers to objections like those "
        "logged on it), best first by how many won leads of the same industry had them. "
        "Scope: `content:read`.",
        parameters=[
            OpenApiParameter(
                "limit",
                type={"type": "integer", "minimum": 1, "maximum": MAX_SUGGESTIONS},
                required=False,
                description=f"How many, 1 to {MAX_SUGGESTIONS} (default 5).",
            )
        ],
        responses={200: SuggestionsSerializer},
        examples=[
            OpenApiExample(
                "Suggestions",
                value={
                    "results": [
                        {
                            "asset": ASSET_EXAMPLE,
                            "score": 2,
                            "reasons": ["for Banking", "fits the decision stage"],
                            "helped_wins": 3,
                            "shared_at": None,
                        }
                    ]
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["content"],
    )
    def get(self, request, pk: int):
        require_team_member(request)
        raw = request.query_params.get("limit")
        limit = 5
        if raw not in (None, ""):
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_SUGGESTIONS:
                raise serializers.ValidationError(
                    {"limit": [f"A whole number from 1 to {MAX_SUGGESTIONS}."]}
                )
            limit = int(raw)
        lead = get_object_or_404(Lead, pk=pk)
        return Response(
            SuggestionsSerializer({"results": suggested_assets(lead=lead, limit=limit)}).data
        )


urlpatterns = [
    path("assets/", AssetListView.as_view(), name="api-assets"),
    path("assets/<int:pk>/", AssetDetailView.as_view(), name="api-asset"),
    path("assets/<int:pk>/share/", AssetShareView.as_view(), name="api-asset-share"),
    path(
        "leads/<int:pk>/suggested-content/",
        LeadSuggestedContentView.as_view(),
        name="api-lead-suggested-content",
    ),
]
