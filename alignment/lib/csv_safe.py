"""CSV that a spreadsheet opens without running anything: a text cell that begins with a formula
character gets a leading apostrophe (OWASP, "CSV Injection"), and rows are streamed as text.

Only text is neutralised: numbers, dates and booleans are written as themselves, so a negative
score stays a number. A phone number such as "+49 30 1234" is text and becomes "'+49 30 1234":
the apostrophe is the price of a file that never evaluates a cell someone else typed.
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# =, +, - and @ start a formula; a tab or a carriage return before one hides it from a glance
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str | int | float | Decimal:
    """One value as a CSV cell: None is empty, a datetime is ISO 8601, text is neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like object csv.writer writes one row into; the row is read back at once."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header, then every row, one CSV line at a time (for a StreamingHttpResponse)."""
    writer = csv.writer(_Line())
    yield writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        yield writer.writerow([csv_cell(v) for v in row])
