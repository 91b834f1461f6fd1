"""GET /api/v1/leads/export/: the filtered lead list as CSV, streamed.

The rows are read through one server-side cursor in chunks (never the whole table in memory) in
one transaction, so the file is one consistent snapshot even while leads change; a lead changed
during the export cannot jump past the rows already written. Text cells that a spreadsheet would
run as a formula are neutralised (alignment.lib.csv_safe)."""

import json
from collections.abc import Iterator

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer

from alignment.api_base import require_team_member
from alignment.lib.csv_safe import csv_lines
from leads.api.filters import LeadFilter, leads_filtered
from leads.models import LEAD_TEXT_FIELDS, Lead

# rows fetched from the server-side cursor at a time, and bytes sent to the client at a time
CHUNK_SIZE = 2000
CHUNK_BYTES = 64 * 1024

# (header, what values_list reads): flat, one value per cell; the JSON representation is the list
EXPORT_COLUMNS = (
    ("id", "id"),
    ("external_id", "external_id"),
    ("email", "email"),
    *((f, f) for f in LEAD_TEXT_FIELDS),
    ("company_size", "company_size"),
    ("source", "source__key"),
    ("campaign_id", "campaign_id"),
    ("campaign", "campaign__name"),
    ("owner_id", "owner_id"),
    ("owner", "owner__username"),
    ("assigned_at", "assigned_at"),
    ("stage", "stage"),
    ("stage_changed_at", "stage_changed_at"),
    ("mql_at", "mql_at"),
    ("sal_at", "sal_at"),
    ("sql_at", "sql_at"),
    ("opportunity_at", "opportunity_at"),
    ("won_at", "won_at"),
    ("lost_at", "lost_at"),
    ("rejected_at", "rejected_at"),
    ("recycled_at", "recycled_at"),
    ("mql_count", "mql_count"),
    ("first_sales_touch_at", "first_sales_touch_at"),
    ("deal_value", "deal_value"),
    ("last_reason", "last_reason__code"),
    ("fit_score", "fit_score"),
    ("engagement_score", "engagement_score"),
    ("score", "score"),
    ("grade", "grade"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
    ("attributes", "attributes"),
)
_ATTRIBUTES = len(EXPORT_COLUMNS) - 1


class CSVRenderer(BaseRenderer):
    """Lets `Accept: text/csv` through content negotiation; the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class AcceptOnlyNegotiation(DefaultContentNegotiation):
    """The file is CSV whatever `?format=` says: only the Accept header is negotiated."""

    settings = _NoFormatOverride


def _rows(qs) -> Iterator[tuple]:
    for row in qs.iterator(chunk_size=CHUNK_SIZE):
        attributes = row[_ATTRIBUTES]
        yield (*row[:_ATTRIBUTES], json.dumps(attributes, sort_keys=True) if attributes else "")


def export_chunks(qs) -> Iterator[str]:
    """The CSV of `qs` (already filtered and ordered), read in one transaction, in pieces of
    about CHUNK_BYTES (one write to the client each, not one per row)."""
    values = qs.values_list(*(column for _, column in EXPORT_COLUMNS))
    with transaction.atomic():
        piece: list[str] = []
        size = 0
        for line in csv_lines([header for header, _ in EXPORT_COLUMNS], _rows(values)):
            piece.append(line)
            size += len(line)
            if size >= CHUNK_BYTES:
                yield "".join(piece)
                piece, size = [], 0
        if piece:
            yield "".join(piece)


class LeadExportView(GenericAPIView):
    """The lead list's filters and ordering, as one CSV file."""

    required_scopes = ("leads:read",)
    renderer_classes = [CSVRenderer, JSONRenderer]
    content_negotiation_class = AcceptOnlyNegotiation
    filterset_class = LeadFilter
    filter_backends = [DjangoFilterBackend]
    queryset = Lead.objects.none()

    @extend_schema(
        operation_id="leads_export",
        summary="Export leads as CSV",
        description="The leads the list would give for the same filters and `ordering`, all of "
        "them, as one CSV file (UTF-8, a header row, streamed as it is read: a million leads "
        "start arriving at once). One row per lead: the lead's fields, `source` as its key, "
        "`campaign` and `owner` by id and by name, times in ISO 8601 UTC, `attributes` as JSON. "
        "A text cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return starts with "
        "an apostrophe, so that a spreadsheet shows it instead of running it. Bad filters are a "
        "400 problem (JSON), as on the list. Scope: `leads:read`.",
        filters=True,
        parameters=[OpenApiParameter("format", exclude=True)],
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="The CSV file (`Content-Disposition: attachment`).",
                examples=[
                    OpenApiExample(
                        "Two leads",
                        value="id,external_id,email,first_name,...\r\n"
                        "4411,sf-0035g00000XyZ,jane.doe@acme.example,Jane,...\r\n"
                        "4410,,'=cmd@evil.example,'=HYPERLINK(...),...\r\n",
                        response_only=True,
                    )
                ],
            ),
        },
        tags=["leads"],
    )
    def get(self, request):
        require_team_member(request)
        filterset, keyset = leads_filtered(request)
        qs = keyset.order(filterset.qs.select_related(None))
        response = StreamingHttpResponse(export_chunks(qs), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
        return response
