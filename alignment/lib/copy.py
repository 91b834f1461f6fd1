"""PostgreSQL's COPY for set-based writers: many rows into one table in one statement."""

import csv
import io
from collections.abc import Iterable, Sequence

from django.db import connection


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY the rows (tuples in `columns` order; None is NULL) into `table` on the default
    connection, which must be PostgreSQL. Values are written with str(): datetimes must be
    aware, decimals exact."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        # "\N" unquoted is NULL in COPY's csv format when NULL is set to it
        writer.writerow(["\\N" if v is None else v for v in row])
    qn = connection.ops.quote_name
    sql = "COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL '\\N')".format(
        qn(table), ", ".join(qn(c) for c in columns)
    )
    buffer.seek(0)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if hasattr(raw, "copy_expert"):  # psycopg2
            raw.copy_expert(sql, buffer, size=1 << 20)
        else:  # psycopg 3
            with raw.copy(sql) as copy:
                copy.write(buffer.getvalue())
