"""Many rows of one table changed in one statement: `UPDATE ... FROM (VALUES ...)`.

Django's bulk_update writes a CASE per column with one WHEN per row: on 1,000 rows and twenty
columns PostgreSQL spends longer planning that than writing. Here each row is one tuple of a
VALUES list, cast to its column's type on PostgreSQL (SQLite takes the values as they come)."""

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.base import ModelState

# parameters per statement: PostgreSQL's protocol allows 65,535, SQLite 32,766
MAX_PARAMETERS = {"postgresql": 65_000}
OTHER_MAX_PARAMETERS = 30_000
_TEXT_TYPES = {"CharField", "EmailField", "SlugField", "TextField", "URLField"}


def _cast(field: models.Field) -> str:
    # text, never varchar(n): a cast to varchar(n) truncates silently, an assignment refuses
    if field.get_internal_type() in _TEXT_TYPES:
        return "text"
    return field.db_type(connection)


def _saves_attribute(field: models.Field) -> bool:
    """Whether saving the field writes its attribute as it is: Django's own fields do, except
    those stamped when saved (auto_now, auto_now_add) and files (committed when saved); a field
    from elsewhere may do anything, so it is asked."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return False
    return type(field).__module__ == models.Field.__module__ or (
        type(field).__module__.startswith("django.db.models.fields.")
        and not isinstance(field, models.FileField)
    )


def _chunks(items: Sequence, width: int) -> Iterator[Sequence]:
    """`items` in runs that keep a statement of `width` parameters per item under the limit."""
    size = max(1, MAX_PARAMETERS.get(connection.vendor, OTHER_MAX_PARAMETERS) // width)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _adapters(fields: Sequence[models.Field]) -> list[bool]:
    """Which values their field must adapt: on PostgreSQL the driver takes plain values (text,
    numbers, times) as they are, so only JSON; on SQLite all."""
    return [connection.vendor != "postgresql" or isinstance(f, models.JSONField) for f in fields]


def rows_update(
    *, model: type[models.Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Set `attnames` of each row: every row is (pk, value, value, ...) in the order of
    `attnames`, values as Python objects (adapted here). Returns the number of rows written."""
    if not rows or not attnames:
        return 0
    meta = model._meta
    fields = [meta.pk] + [next(f for f in meta.concrete_fields if f.attname == a) for a in attnames]
    adapted = _adapters(fields)
    columns = [connection.ops.quote_name(f.column) for f in fields]
    table = connection.ops.quote_name(meta.db_table)
    pk = columns[0]
    if connection.vendor == "postgresql":
        row_sql = "(" + ", ".join(f"%s::{_cast(f)}" for f in fields) + ")"
    else:
        row_sql = "(" + ", ".join("%s" for _ in fields) + ")"
    sets = ", ".join(f"{c} = v.{c}" for c in columns[1:])
    written = 0
    # the connection itself, not the proxy: it is read per value
    db = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, len(fields)):
            params: list[Any] = []
            for row in chunk:
                for f, adapt, value in zip(fields, adapted, row, strict=True):
                    params.append(f.get_db_prep_save(value, db) if adapt else value)
            values = ", ".join(row_sql for _ in chunk)
            if connection.vendor == "postgresql":
                sql = (
                    f"UPDATE {table} AS t SET {sets} FROM (VALUES {values}) "
                    f"AS v({', '.join(columns)}) WHERE t.{pk} = v.{pk}"
                )
            else:
                sql = (
                    f"WITH v({', '.join(columns)}) AS (VALUES {values}) "
                    f"UPDATE {table} SET {sets} FROM v WHERE {table}.{pk} = v.{pk}"
                )
            cursor.execute(sql, params)
            written += cursor.rowcount
    return written


def rows_insert(*, objs: Sequence[models.Model]) -> None:
    """INSERT the (new, unsaved) instances in one statement (per MAX_PARAMETERS) and set their
    primary keys: what bulk_create does, without its per-value compilation (on 1,000 leads of
    fifty columns that took longer than the INSERT itself). Defaults and auto_now are applied as
    save() applies them."""
    if not objs:
        return
    meta = objs[0]._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    adapted = _adapters(fields)
    plain = [_saves_attribute(f) for f in fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    returning = f"RETURNING {quote(meta.pk.column)}"
    db = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        for chunk in _chunks(objs, len(fields)):
            rows = [
                [
                    getattr(obj, f.attname) if read else f.pre_save(obj, add=True)
                    for f, read in zip(fields, plain, strict=True)
                ]
                for obj in chunk
            ]
            if connection.vendor == "postgresql":
                sql, params = _insert_postgresql(table, fields, adapted, rows, db)
            else:
                columns = ", ".join(quote(f.column) for f in fields)
                row_sql = "(" + ", ".join("%s" for _ in fields) + ")"
                sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join(row_sql for _ in rows)}"
                params = [
                    f.get_db_prep_save(value, db) if adapt else value
                    for row in rows
                    for f, adapt, value in zip(fields, adapted, row, strict=True)
                ]
            cursor.execute(f"{sql} {returning}", params)
            for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = connection.alias


def _same(a: Any, b: Any) -> bool:
    """One value for the database: of one type, equal, and a decimal spelled alike (1.0 and 1.00
    are equal but not the same number to store)."""
    return type(a) is type(b) and a == b and (not isinstance(a, Decimal) or str(a) == str(b))


def _insert_postgresql(
    table: str, fields: Sequence[models.Field], adapted: Sequence[bool], rows: list[list], db
) -> tuple[str, list[Any]]:
    """The INSERT of `rows` with each column that holds one value in every row sent once: a new
    lead leaves most of its fifty columns at their defaults, and every value sent is one more
    literal for the driver to quote and for PostgreSQL to parse and plan (a third of the
    statement's time on 1,000 leads)."""
    quote = connection.ops.quote_name
    first = rows[0]
    constant = [all(_same(row[i], first[i]) for row in rows) for i in range(len(fields))]
    if all(constant):
        constant[0] = False  # VALUES needs a column
    varying = [i for i, same in enumerate(constant) if not same]
    fixed = [i for i, same in enumerate(constant) if same]

    def prepared(i: int, value: Any) -> Any:
        return fields[i].get_db_prep_save(value, db) if adapted[i] else value

    columns = ", ".join(quote(fields[i].column) for i in varying + fixed)
    selected = ", ".join([f"v.c{i}" for i in varying] + [f"%s::{_cast(fields[i])}" for i in fixed])
    row_sql = "(" + ", ".join(f"%s::{_cast(fields[i])}" for i in varying) + ")"
    params = [prepared(i, first[i]) for i in fixed]
    params += [prepared(i, row[i]) for row in rows for i in varying]
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {selected} FROM (VALUES "
        f"{', '.join(row_sql for _ in rows)}) AS v({', '.join(f'c{i}' for i in varying)})"
    )
    return sql, params


class Blank:
    """New, unsaved instances of a model, each field at its default (a callable default called
    for each instance), as `model(**values)` builds them but without Model.__init__'s work per
    field: on 1,000 leads of fifty fields that cost more than the request's INSERT. `values`
    are attnames (`owner_id`, not `owner`). The model must not rely on post_init."""

    def __init__(self, model: type[models.Model]):
        self.model = model
        fields = model._meta.concrete_fields
        self.fixed = {
            f.attname: f.get_default()
            for f in fields
            if not (f.has_default() and callable(f.default))
        }
        self.called = [
            (f.attname, f.default) for f in fields if f.has_default() and callable(f.default)
        ]

    def __call__(self, **values: Any) -> models.Model:
        obj = self.model.__new__(self.model)
        obj._state = ModelState()
        data = obj.__dict__
        data.update(self.fixed)
        for attname, default in self.called:
            if attname not in values:
                data[attname] = default()
        data.update(values)
        return obj


def rows_instances(
    *, model: type[models.Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[models.Model]:
    """Saved instances from rows read with `values_list(*attnames)`, as `Model.from_db` builds
    them (the other fields deferred: read on first access) without its __init__ per row."""
    objs = []
    for row in rows:
        obj = model.__new__(model)
        state = obj._state = ModelState()
        state.adding = False
        state.db = connection.alias
        obj.__dict__.update(zip(attnames, row, strict=True))
        objs.append(obj)
    return objs
