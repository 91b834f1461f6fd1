"""Touchpoint ingest over REST: POST /api/v1/touchpoints/ (leads.importing.touchpoints does the
work)."""

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES
from alignment.idempotency import idempotent
from leads.api.bulk import (
    IDEMPOTENCY_ANSWERS,
    bulk_response_serializer,
    counts_of,
    described,
)
from leads.api.leads import api_actor
from leads.importing.touchpoints import RECORDED, touchpoints_record_bulk
from leads.importing.upsert import MAX_ITEMS, check_items
from leads.models import LOGGED_TOUCHPOINT_KINDS

RESULTS = (RECORDED, "error")


class TouchpointItemSerializer(serializers.Serializer):
    """One touchpoint (for the schema: the service checks each item and answers its errors)."""

    lead_id = described("The lead's id; or name it by external_id or email.")
    external_id = described("The lead's external id.")
    email = described("The lead's email.")
    kind = described(f"One of: {', '.join(LOGGED_TOUCHPOINT_KINDS)}.")
    occurred_at = described(
        "ISO 8601 with an offset; not in the future (5 minutes of clock skew pass)."
    )
    campaign = described("A campaign id (a number) or its utm_campaign.")
    metadata = described(
        "An object: anything about the touch (page, subject...); `utm_campaign` here links the "
        "campaign when `campaign` is not given. Scoring rules may read it. On a "
        "`content_download`, `asset_id` (a content library asset's id) or `url` / `asset_url` "
        "(the asset's link, or its file address /content/{id}/file/) links the download to the "
        "asset: a `content.engaged` event follows."
    )


class TouchpointsRequestSerializer(serializers.Serializer):
    touchpoints = TouchpointItemSerializer(many=True, max_length=MAX_ITEMS)
    create_unknown = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Create a lead named by email or external id that does not exist yet "
        "(otherwise such a touchpoint is an error).",
    )


TouchpointsResponseSerializer = bulk_response_serializer("TouchpointsResponse", RESULTS)

DESCRIPTION = f"""Record up to {MAX_ITEMS:,} touchpoints (web visits, email clicks, form
submits, calls...) in one request. Each names its lead by `lead_id`, `external_id` or `email`
(matched in that order) and is scored at once, as one recorded in the app: a
`touchpoint.recorded` event each, the first sales touch after an MQL stamped (speed-to-lead; it
stops the SLA clock), and a lead that now meets the MQL definition becomes an MQL and is routed
(its later touchpoints in the same request are recorded after that move).

A lead named by email or external id that does not exist is an `error`, or is created first when
the request says `"create_unknown": true`. Sales kinds (`call`, `sales_email`, `meeting`,
`note`) need a person: a key acting as a sales rep (on the rep's own leads) or a sales manager;
a key acting as nobody may send marketing kinds only. Every item gets its own answer in request
order (`recorded` with the lead's `id`, or `error` with field `errors`); HTTP 200 whenever the
request itself is valid. More than {MAX_ITEMS:,} items is a 400 and nothing is done.

Send an `Idempotency-Key` to retry safely. Scope: `touchpoints:write`."""


class TouchpointIngestView(APIView):
    # a JSON body only: a list of objects has no form encoding
    parser_classes = [JSONParser]
    required_scopes = ("touchpoints:write",)

    @extend_schema(
        summary="Record touchpoints",
        description=DESCRIPTION,
        request=TouchpointsRequestSerializer,
        responses={200: TouchpointsResponseSerializer, **IDEMPOTENCY_ANSWERS},
        examples=[
            OpenApiExample(
                "Three touchpoints",
                value={
                    "touchpoints": [
                        {
                            "email": "ann@example.com",
                            "kind": "web_visit",
                            "occurred_at": "2026-03-02T09:30:00+01:00",
                            "metadata": {"page": "/pricing", "utm_campaign": "spring-2026"},
                        },
                        {
                            "lead_id": 4411,
                            "kind": "form_submit",
                            "occurred_at": "2026-03-02T09:31:12Z",
                        },
                        {"email": "new@example.com", "kind": "email_click", "occurred_at": "x"},
                    ],
                    "create_unknown": False,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Per-item answers",
                value={
                    "counts": {"recorded": 2, "error": 1},
                    "results": [
                        {"index": 0, "result": "recorded", "id": 4411},
                        {"index": 1, "result": "recorded", "id": 4411},
                        {
                            "index": 2,
                            "result": "error",
                            "errors": {
                                "occurred_at": [
                                    "An ISO 8601 time with its offset, e.g. "
                                    "2026-03-02T09:30:00+01:00."
                                ]
                            },
                        },
                    ],
                },
                response_only=True,
                status_codes=["200"],
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["touchpoints"],
    )
    @idempotent
    def post(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        items = check_items(body.get("touchpoints"), name="touchpoints")
        create_unknown = body.get("create_unknown", False)
        if not isinstance(create_unknown, bool):
            raise serializers.ValidationError({"create_unknown": ["Must be true or false."]})
        results = touchpoints_record_bulk(
            items=items, create_unknown=create_unknown, **api_actor(request)
        )
        return Response(
            {"counts": counts_of(results, RESULTS), "results": [r.as_dict() for r in results]}
        )


urlpatterns = [path("touchpoints/", TouchpointIngestView.as_view(), name="api-touchpoints")]
