"""Keyset pagination's one rule, for the API's cursors and the pages alike: rows in the order of
a field with id as the tie-breaker, and the rows that come after a given (value, id)."""

from typing import Any

from django.db.models import Q, QuerySet


def keyset_order(qs: QuerySet, field: str, *, descending: bool) -> QuerySet:
    """`qs` by `field`, then id, both in the same direction."""
    sign = "-" if descending else ""
    if field == "id":
        return qs.order_by(f"{sign}id")
    return qs.order_by(f"{sign}{field}", f"{sign}id")


def keyset_after(qs: QuerySet, field: str, value: Any, pk: int, *, descending: bool) -> QuerySet:
    """The rows of `qs` that come after (value, pk) in that order."""
    past, tie = ("lt", "lte") if descending else ("gt", "gte")
    if field == "id":
        return qs.filter(**{f"id__{past}": pk})
    # `field <= value` lets the index's range start at the cursor; the OR settles the ties
    return qs.filter(
        Q(**{f"{field}__{tie}": value}),
        Q(**{f"{field}__{past}": value}) | Q(**{f"id__{past}": pk}),
    )
