"""Leads over REST: list (filters, ordering, cursor pages), read (with the score explanation and
the SLA clocks), create, partial update, upsert by external id, and the CSV export.

Every change goes through leads.intake (lead_intake, lead_update): a key acting as a person is
held to that person's role and recorded as them; a key of its own is recorded as the system
`api:<key name>`."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from alignment.api import PROBLEM_EXAMPLES, PROBLEM_MEDIA_TYPE, problem
from alignment.api_auth import request_api_key
from alignment.api_base import require_team_member
from alignment.idempotency import idempotent
from alignment.models import User
from leads.api.examples import (
    LEAD_DETAIL_EXAMPLE,
    LEAD_EXAMPLE,
    LEAD_INPUT_EXAMPLE,
    LEAD_PATCH_EXAMPLE,
)
from leads.api.export import LeadExportView
from leads.api.filters import LeadFilter, leads_filtered
from leads.api.pagination import CURSOR_PARAMETERS, keyset_response
from leads.api.serializers import (
    LEAD_RELATED,
    LeadCreateSerializer,
    LeadDetailSerializer,
    LeadPageSerializer,
    LeadPatchSerializer,
    LeadSerializer,
    LeadUpsertResultSerializer,
    LeadUpsertSerializer,
    lead_data,
)
from leads.intake import lead_find, lead_intake, lead_update
from leads.models import Lead, MergeRecord
from leads.scoring.selectors import lead_score_explain
from sla.templatetags.sla_clocks import lead_sla_clocks

READ = ("leads:read",)
WRITE = ("leads:write",)


def api_actor(request) -> dict:
    """Who a change is recorded as: the signed-in person, the key's acting user (through the
    API), or the key itself as a named system."""
    key = request_api_key(request)
    if key is None:
        return {"by": request.user, "system": ""}
    system = f"api:{key.name}"[:50]
    user: User | None = key.user_for_permissions()
    return {"by": user, "system": system}


def api_person(request, refusal: str) -> User:
    """The person a write is recorded as (the signed-in user or the key's acting user); a key of
    its own is refused with `refusal` (403): feedback and content are always someone's."""
    by = api_actor(request)["by"]
    if by is None:
        raise exceptions.PermissionDenied(refusal)
    return by


def _lead_or_404(pk: int) -> Lead:
    lead = Lead.objects.select_related(*LEAD_RELATED).filter(pk=pk).first()
    if lead is not None:
        return lead
    merged = MergeRecord.objects.filter(merged_lead_id=pk).values_list("survivor_id", flat=True)
    survivor = merged.first()
    if survivor is not None:
        raise exceptions.NotFound(
            f"Lead {pk} was merged into lead {survivor}: read /api/v1/leads/{survivor}/."
        )
    raise exceptions.NotFound(f"There is no lead {pk}.")


def lead_detail_data(lead: Lead) -> dict:
    """The lead with what its page shows beside it: the score explanation and the SLA clocks."""
    lead.api_score_explanation = lead_score_explain(lead=lead)
    lead.api_sla_clocks = [line.clock for line in lead_sla_clocks(lead)]
    return LeadDetailSerializer(lead).data


def _reloaded(lead: Lead) -> Lead:
    return Lead.objects.select_related(*LEAD_RELATED).get(pk=lead.pk)


def _location(request, lead: Lead) -> str:
    return reverse("api-lead", kwargs={"pk": lead.pk}, request=request)


class LeadExists(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "lead_exists"

    def __init__(self, lead: Lead, *, by: str):
        super().__init__(
            f"A lead with this {by} already exists: lead {lead.pk} (/api/v1/leads/{lead.pk}/). "
            "Change it with PATCH /api/v1/leads/{id}/, or upsert by external id with "
            "PUT /api/v1/leads/external/{external_id}/."
        )
        self.lead = lead


class ExternalIdTaken(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "email_taken"

    def __init__(self, lead: Lead):
        super().__init__(
            f"This email belongs to lead {lead.pk}, whose external id is "
            f"{lead.external_id!r}: merge the two leads or send that lead's external id."
        )


def _matched_by(lead: Lead, *, email: str | None, external_id: str | None) -> str:
    return "external id" if external_id and lead.external_id == external_id else "email"


def _conflict_response(status_code: int, detail: str, code: str) -> OpenApiResponse:
    return OpenApiResponse(
        description=detail,
        response={"$ref": "#/components/schemas/Problem"},
        examples=[
            OpenApiExample(
                code,
                value=problem(
                    status_code=status_code,
                    detail=detail,
                    instance="/api/v1/leads/",
                    code=code,
                ),
                response_only=True,
                status_codes=[str(status_code)],
            )
        ],
    )


LEAD_EXISTS = _conflict_response(
    409,
    "A lead with this email already exists: lead 4411 (/api/v1/leads/4411/). Change it with "
    "PATCH /api/v1/leads/{id}/, or upsert by external id with "
    "PUT /api/v1/leads/external/{external_id}/.",
    "lead_exists",
)
EMAIL_TAKEN = _conflict_response(
    409,
    "This email belongs to lead 4411, whose external id is 'sf-003': merge the two leads or "
    "send that lead's external id.",
    "email_taken",
)

LIST_DESCRIPTION = """Leads, most recently changed first (`ordering=-updated_at`), a page at a
time: follow `next` (or send `next_cursor` as `cursor`) until it is null. Pages continue after
the last row of the previous one, so leads changed at the same instant are neither skipped nor
repeated; a lead changed while you page moves to the top and is seen by the next sync with
`updated_since`. There is no total: counting a million leads would cost more than the page.

Filters combine with AND. Times are ISO 8601 with an offset (`2026-12-01T09:00:00Z`, or
`+01:00` sent as `%2B01:00`); a time without one is refused with a field error.
`updated_since` sees changes of the lead's data, stage and owner; score changes are events
(`score.changed` in the event feed). Scope: `leads:read`."""


class LeadListView(GenericAPIView):
    """GET the leads (filtered, ordered, by cursor); POST a new lead."""

    parser_classes = [JSONParser]
    required_scopes = {"GET": READ, "POST": WRITE}
    filterset_class = LeadFilter
    filter_backends = [DjangoFilterBackend]
    queryset = Lead.objects.none()
    serializer_class = LeadSerializer

    @extend_schema(
        operation_id="leads_list",
        summary="List leads",
        description=LIST_DESCRIPTION,
        filters=True,
        parameters=CURSOR_PARAMETERS,
        responses={200: LeadPageSerializer},
        examples=[
            OpenApiExample(
                "A page of MQLs",
                value={
                    "results": [LEAD_EXAMPLE],
                    "next": "https://pipeline.example.com/api/v1/leads/?stage=mql&cursor=eyJvIjoi",
                    "next_cursor": "eyJvIjoi",
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["leads"],
    )
    def get(self, request):
        require_team_member(request)
        filterset, keyset = leads_filtered(request)
        return keyset_response(request, keyset, filterset.qs, LeadSerializer)

    @extend_schema(
        operation_id="leads_create",
        summary="Create a lead",
        description="Creates one lead through the same intake as forms and imports: it is "
        "scored, routed, and becomes an MQL at once if it meets the definition. It needs an "
        "email or an external id. A lead that already exists with that email or external id is "
        "not changed: the answer is a 409 naming it (to update, PATCH it or PUT "
        "/api/v1/leads/external/{external_id}/). A key acting as a person needs a role that may "
        "create leads. Send an `Idempotency-Key` to make a retry safe. Scope: `leads:write`.",
        request=LeadCreateSerializer,
        responses={
            201: LeadSerializer,
            (409, PROBLEM_MEDIA_TYPE): LEAD_EXISTS,
        },
        examples=[
            OpenApiExample("A new lead", value=LEAD_INPUT_EXAMPLE, request_only=True),
            OpenApiExample("Created", value=LEAD_EXAMPLE, response_only=True, status_codes=["201"]),
            *PROBLEM_EXAMPLES,
        ],
        tags=["leads"],
    )
    @idempotent
    def post(self, request):
        body = LeadCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        email, external_id = data.get("email"), data.get("external_id")
        found = lead_find(email=email, external_id=external_id)
        if found is not None:
            raise LeadExists(found, by=_matched_by(found, email=email, external_id=external_id))
        with transaction.atomic():
            result = lead_intake(data=data, **api_actor(request))
            if not result.created:
                # created by someone else a moment ago: undo the update intake made of it
                raise LeadExists(
                    result.lead,
                    by=_matched_by(result.lead, email=email, external_id=external_id),
                )
        lead = _reloaded(result.lead)
        return Response(
            lead_data(lead),
            status=status.HTTP_201_CREATED,
            headers={"Location": _location(request, lead)},
        )


DETAIL_DESCRIPTION = """The lead with why it scores what it scores (the lead page's
explanation: fit rules matched, engagement decayed to now, the grade and the distance to the MQL
definition; null when no scoring version is active) and its SLA clocks (newest first). A lead
merged into another is a 404 that names the survivor. Scope: `leads:read`."""


class LeadDetailView(GenericAPIView):
    """GET one lead; PATCH its own data."""

    parser_classes = [JSONParser]
    required_scopes = {"GET": READ, "PATCH": WRITE}
    queryset = Lead.objects.none()
    serializer_class = LeadDetailSerializer

    @extend_schema(
        operation_id="leads_retrieve",
        summary="Read a lead",
        description=DETAIL_DESCRIPTION,
        responses={200: LeadDetailSerializer},
        examples=[
            OpenApiExample("A lead", value=LEAD_DETAIL_EXAMPLE, response_only=True),
            *PROBLEM_EXAMPLES,
        ],
        tags=["leads"],
    )
    def get(self, request, pk: int):
        require_team_member(request)
        return Response(lead_detail_data(_lead_or_404(pk)))

    @extend_schema(
        operation_id="leads_partial_update",
        summary="Change a lead's data",
        description="Changes the fields sent and no others (`attributes` is merged key by key). "
        "Only the lead's own data can change here: a stage, owner or score in the body is a 400 "
        "that names the action that changes it, and so is an email or external id. The score "
        "follows the new data, and a lead that now meets the MQL definition becomes an MQL. "
        "A key acting as a person needs a role that may edit leads. Scope: `leads:write`.",
        request=LeadPatchSerializer,
        responses={200: LeadSerializer},
        examples=[
            OpenApiExample("New title and size", value=LEAD_PATCH_EXAMPLE, request_only=True),
            OpenApiExample("Changed", value=LEAD_EXAMPLE, response_only=True),
            *PROBLEM_EXAMPLES,
        ],
        tags=["leads"],
    )
    def patch(self, request, pk: int):
        lead = _lead_or_404(pk)
        body = LeadPatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lead_update(lead=lead, changes=dict(body.validated_data), **api_actor(request))
        return Response(lead_data(_reloaded(lead)))


class LeadExternalView(GenericAPIView):
    """GET or upsert (PUT) the lead another system knows by its external id."""

    parser_classes = [JSONParser]
    lookup_field = "external_id"  # OPTIONS (DRF's metadata) looks the object up by it
    required_scopes = {"GET": READ, "PUT": WRITE}
    queryset = Lead.objects.none()
    serializer_class = LeadDetailSerializer

    @extend_schema(
        operation_id="leads_external_retrieve",
        summary="Read a lead by external id",
        description="The lead whose `external_id` this is, as GET /api/v1/leads/{id}/ answers. "
        "Scope: `leads:read`.",
        responses={200: LeadDetailSerializer},
        examples=[
            OpenApiExample("A lead", value=LEAD_DETAIL_EXAMPLE, response_only=True),
            *PROBLEM_EXAMPLES,
        ],
        tags=["leads"],
    )
    def get(self, request, external_id: str):
        require_team_member(request)
        lead = get_object_or_404(
            Lead.objects.select_related(*LEAD_RELATED), external_id=external_id.strip()
        )
        return Response(lead_detail_data(lead))

    @extend_schema(
        operation_id="leads_external_upsert",
        summary="Upsert a lead by external id",
        description="Creates the lead with this external id (201) or updates it (200) through "
        "the same intake as forms and imports; `result` says created, updated or unchanged. "
        "Fields left out are kept (`attributes` is merged key by key), so a retry does no harm. "
        "A lead found by the email that has no external id yet gets this one; an email that "
        "belongs to a lead with another external id is a 409. A key acting as a person needs "
        "a role that may create leads. Scope: `leads:write`.",
        request=LeadUpsertSerializer,
        responses={
            200: LeadUpsertResultSerializer,
            201: LeadUpsertResultSerializer,
            (409, PROBLEM_MEDIA_TYPE): EMAIL_TAKEN,
        },
        examples=[
            OpenApiExample(
                "The CRM's contact",
                value={k: v for k, v in LEAD_INPUT_EXAMPLE.items() if k != "external_id"},
                request_only=True,
            ),
            OpenApiExample(
                "Updated",
                value={"result": "updated", "lead": LEAD_EXAMPLE},
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Created",
                value={"result": "created", "lead": LEAD_EXAMPLE},
                response_only=True,
                status_codes=["201"],
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["leads"],
    )
    def put(self, request, external_id: str):
        external_id = external_id.strip()
        body = LeadUpsertSerializer(data=request.data, context={"external_id": external_id})
        body.is_valid(raise_exception=True)
        data = {**body.validated_data, "external_id": external_id}
        email = data.get("email")
        found = lead_find(email=email, external_id=external_id)
        if found is not None and found.external_id not in (None, external_id):
            raise ExternalIdTaken(found)
        with transaction.atomic():
            result = lead_intake(data=data, **api_actor(request))
            if result.lead.external_id != external_id:  # a concurrent write took the email
                raise ExternalIdTaken(result.lead)
        lead = _reloaded(result.lead)
        word = "created" if result.created else "updated" if result.changed else "unchanged"
        headers = {"Location": _location(request, lead)} if result.created else {}
        return Response(
            {"result": word, "lead": lead_data(lead)},
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
            headers=headers,
        )


# export/ and external/ before <int:pk>/ so that no word is read as an id
urlpatterns = [
    path("leads/", LeadListView.as_view(), name="api-leads"),
    path("leads/export/", LeadExportView.as_view(), name="api-leads-export"),
    path("leads/external/<str:external_id>/", LeadExternalView.as_view(), name="api-lead-external"),
    path("leads/<int:pk>/", LeadDetailView.as_view(), name="api-lead"),
]
