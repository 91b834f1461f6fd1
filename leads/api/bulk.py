"""Bulk lead upsert over REST: POST /api/v1/leads/bulk/ (leads.importing.upsert does the work)."""

from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES, PROBLEM_MEDIA_TYPE, problem
from alignment.idempotency import idempotent
from leads.api.leads import api_actor
from leads.importing.upsert import MAX_ITEMS, ItemResult, check_items, leads_upsert_bulk
from leads.models import LEAD_TEXT_FIELDS, Lead

RESULTS = ("created", "updated", "unchanged", "error")


def described(help_text: str) -> serializers.JSONField:
    """A property of a bulk item, for the schema only: its type is not constrained there, since
    an item with a wrong value is answered as that item's error (HTTP 200), not as a 400."""
    return serializers.JSONField(required=False, help_text=help_text)


# one lead of a bulk upsert, for the schema (the service checks the items, as lead_intake does)
BulkLeadItemSerializer = type(
    "BulkLeadItem",
    (serializers.Serializer,),
    {
        "email": described("The lead's email (matched case-insensitively). Email or external id."),
        "external_id": described("Your system's id for the lead (at most 128 characters)."),
        **{
            name: described(f"{Lead._meta.get_field(name).verbose_name.capitalize()} (a string).")
            for name in LEAD_TEXT_FIELDS
        },
        "company_size": described("A whole number, 0 or more."),
        "source": described("An existing source key, e.g. google_ads."),
        "campaign": described("A campaign id (a number), or its name or utm_campaign."),
        "attributes": described("An object of custom data, merged key by key."),
    },
)


class BulkLeadsRequestSerializer(serializers.Serializer):
    leads = BulkLeadItemSerializer(many=True, max_length=MAX_ITEMS)


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request, from 0.")
    result = serializers.ChoiceField(choices=RESULTS)
    id = serializers.IntegerField(required=False, help_text="The lead's id (not with an error).")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field errors of an item that changed nothing: {field: [messages]}.",
    )


def counts_of(results: list[ItemResult], names: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for r in results:
        counts[r.result] += 1
    return counts


def bulk_response_serializer(name: str, results: tuple[str, ...]) -> type[serializers.Serializer]:
    counts = type(
        f"{name}Counts",
        (serializers.Serializer,),
        {r: serializers.IntegerField() for r in results},
    )
    return type(
        name,
        (serializers.Serializer,),
        {
            "counts": counts(help_text="How many items had each result."),
            "results": BulkItemResultSerializer(many=True),
        },
    )


BulkLeadsResponseSerializer = bulk_response_serializer("BulkLeadsResponse", RESULTS)

# what an Idempotency-Key can answer besides the first answer replayed
IDEMPOTENCY_ANSWERS = {
    (409, PROBLEM_MEDIA_TYPE): OpenApiResponse(
        description="A request with this Idempotency-Key is still being processed; retry later.",
        response={"$ref": "#/components/schemas/Problem"},
    ),
    (422, PROBLEM_MEDIA_TYPE): OpenApiResponse(
        description="This Idempotency-Key was used with a different request body.",
        response={"$ref": "#/components/schemas/Problem"},
    ),
}

DESCRIPTION = f"""Create or update up to {MAX_ITEMS:,} leads in one request. Each lead is matched
by `external_id`, then by `email` (case-insensitive), exactly as a single upsert: only the fields
that differ are written (one `lead.updated` event listing them), a new lead gets `lead.created`,
the score follows, and a lead that now meets the MQL definition becomes an MQL (and is routed).

Every item gets its own answer, in request order, with its `index`: `created`, `updated` or
`unchanged` with the lead's `id`, or `error` with field `errors`; an item in error changes
nothing and does not stop the others. The answer is HTTP 200 whenever the request itself is
valid, even if items failed: read `counts` and `results`. More than {MAX_ITEMS:,} items, or a body
that is not `{{"leads": [...]}}`, is a 400 and nothing is done.

The same lead twice in one request (same email or external id, or two items matching one lead)
is ambiguous: the first item counts, every later one is an `error` naming the first.
`source` is an existing source key; `campaign` a campaign id, name or utm_campaign. Fields that
are not the lead's own data (stage, owner, score) are refused per item.

Send an `Idempotency-Key` to retry safely. A key acting as a user is held to that user's role
(lead.create). Scope: `leads:write`."""


class LeadBulkView(APIView):
    # a JSON body only: a list of objects has no form encoding
    parser_classes = [JSONParser]
    required_scopes = ("leads:write",)

    @extend_schema(
        summary="Bulk upsert leads",
        description=DESCRIPTION,
        request=BulkLeadsRequestSerializer,
        responses={200: BulkLeadsResponseSerializer, **IDEMPOTENCY_ANSWERS},
        examples=[
            OpenApiExample(
                "Three leads",
                value={
                    "leads": [
                        {"external_id": "sf-001", "email": "ann@example.com", "company": "Acme"},
                        {"email": "bob@example.com", "country": "DE", "company_size": 40},
                        {"email": "not-an-email"},
                    ]
                },
                request_only=True,
            ),
            OpenApiExample(
                "Per-item answers",
                value={
                    "counts": {"created": 1, "updated": 1, "unchanged": 0, "error": 1},
                    "results": [
                        {"index": 0, "result": "updated", "id": 4411},
                        {"index": 1, "result": "created", "id": 9120},
                        {
                            "index": 2,
                            "result": "error",
                            "errors": {"email": ["“not-an-email” is not a valid email address."]},
                        },
                    ],
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Too many leads",
                value=problem(
                    status_code=400,
                    detail=f"At most {MAX_ITEMS} leads per request (1200 sent); split the batch.",
                    instance="/api/v1/leads/bulk/",
                    code="invalid",
                    errors={
                        "leads": [
                            f"At most {MAX_ITEMS} leads per request (1200 sent); split the batch."
                        ]
                    },
                ),
                response_only=True,
                status_codes=["400"],
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["leads"],
    )
    @idempotent
    def post(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        items = check_items(body.get("leads"), name="leads")
        results = leads_upsert_bulk(items=items, new_sources=False, **api_actor(request))
        return Response(
            {
                "counts": counts_of(results, RESULTS),
                "results": [r.as_dict() for r in results],
            }
        )


urlpatterns = [path("leads/bulk/", LeadBulkView.as_view(), name="api-leads-bulk")]
