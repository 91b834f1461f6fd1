"""Cursor pagination on (ordering field, id): each page continues strictly after the last row
of the one before, so rows with equal timestamps are neither skipped nor repeated, however many
there are, and a page costs the same at row 50 as at row 900,000 (no OFFSET, no COUNT)."""

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Model, QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from alignment.lib.keyset import keyset_after, keyset_order

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_ID = 2**63 - 1

CURSOR_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        type=str,
        required=False,
        description="The `next_cursor` of the previous page (opaque); leave it out for the first "
        "page. Keep the same filters and ordering while you follow it.",
    ),
    OpenApiParameter(
        "page_size",
        type={"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        required=False,
        description=f"Rows per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
    ),
]


def _invalid(field: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [message]})


def page_size_of(params) -> int:
    raw = params.get("page_size")
    if raw in (None, ""):
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise _invalid("page_size", "A whole number, please.") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _invalid("page_size", f"Between 1 and {MAX_PAGE_SIZE}.")
    return size


@dataclass(frozen=True)
class Keyset:
    """One ordering, e.g. "-updated_at": the field, its direction, and id as the tie-breaker."""

    ordering: str

    @property
    def field(self) -> str:
        return self.ordering.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.ordering.startswith("-")

    def order(self, qs: QuerySet) -> QuerySet:
        return keyset_order(qs, self.field, descending=self.descending)

    def after(self, qs: QuerySet, value: Any, pk: int) -> QuerySet:
        """The rows that come after (value, pk) in this order."""
        return keyset_after(qs, self.field, value, pk, descending=self.descending)

    def encode(self, row: Model) -> str:
        value = getattr(row, self.field)
        if isinstance(value, datetime):
            value = value.isoformat()
        raw = json.dumps({"o": self.ordering, "v": value, "i": row.pk}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple[Any, int]:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            ordering, value, pk = data["o"], data["v"], data["i"]
        except (binascii.Error, ValueError, TypeError, KeyError, UnicodeError):
            raise _invalid("cursor", "This cursor is not one this API gave out.") from None
        if ordering != self.ordering:
            raise _invalid(
                "cursor",
                f"This cursor belongs to ordering={ordering}; follow it with the same ordering.",
            )
        if not isinstance(pk, int) or isinstance(pk, bool) or not 0 <= pk <= MAX_ID:
            raise _invalid("cursor", "This cursor is not one this API gave out.")
        if self.field in ("created_at", "updated_at"):
            try:
                value = parse_datetime(value) if isinstance(value, str) else None
            except ValueError:
                value = None
            if value is not None and value.tzinfo is None:
                value = None
        elif self.field == "score":
            number = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if number and math.isfinite(value) else None
        if value is None and self.field != "id":
            raise _invalid("cursor", "This cursor is not one this API gave out.")
        return value, pk

    def page(self, qs: QuerySet, *, cursor: str | None, size: int) -> tuple[list, str | None]:
        """One page of `qs` in this order, and the cursor of the next page (None at the end):
        one query."""
        qs = self.order(qs)
        if cursor:
            qs = self.after(qs, *self.decode(cursor))
        rows = list(qs[: size + 1])
        if len(rows) <= size:
            return rows, None
        rows = rows[:size]
        return rows, self.encode(rows[-1])


def keyset_response(request, keyset: "Keyset", qs: QuerySet, serializer_class) -> Response:
    """One page of `qs` in `keyset`'s order as every list answers it: `results`, the `next` URL
    (this request's, with the cursor) and the bare `next_cursor`."""
    rows, cursor = keyset.page(
        qs, cursor=request.query_params.get("cursor"), size=page_size_of(request.query_params)
    )
    next_url = (
        replace_query_param(request.build_absolute_uri(), "cursor", cursor) if cursor else None
    )
    return Response(
        {"results": serializer_class(rows, many=True).data, "next": next_url, "next_cursor": cursor}
    )
