"""The mapping file: which CSV column becomes which lead field, attribute, external id or outcome.

The format is documented in docs/import.md; this module turns a TOML or JSON document into a
validated `Mapping`, and a `Mapping` plus a file's header into a `Plan` (column positions)."""

import codecs
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from alignment.lib.errors import DomainError
from leads.models import LEAD_TEXT_FIELDS, Lead, normalise_key

# lead fields a column (or a constant) may fill
LEAD_FIELDS = ("email", "external_id", *LEAD_TEXT_FIELDS, "company_size", "source", "campaign")
# without an explicit mapping these header spellings (after normalise_key) also find their field
FIELD_ALIASES = {
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "firstname": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "job_title": "title",
    "phone_number": "phone",
    "telephone": "phone",
    "company_name": "company",
    "organisation": "company",
    "organization": "company",
    "employees": "company_size",
    "number_of_employees": "company_size",
    "lead_source": "source",
    "campaign_name": "campaign",
    "url": "website",
    "website_url": "website",
}
ATTRIBUTE_TYPES = ("auto", "int", "float", "str", "bool")
TOP_LEVEL_KEYS = {
    "delimiter",
    "encoding",
    "missing",
    "decimal",
    "auto_fields",
    "unmapped",
    "exclude",
    "fields",
    "constants",
    "external_id",
    "attributes",
    "outcome",
}


@dataclass(frozen=True)
class AttributeSpec:
    key: str
    column: str
    type: str = "auto"


@dataclass(frozen=True)
class ExternalIdSpec:
    column: str = ""
    row_number: bool = False
    prefix: str = ""


@dataclass(frozen=True)
class OutcomeSpec:
    column: str
    won: frozenset[str]
    lost: frozenset[str]
    open: frozenset[str] = frozenset()
    at: str = ""


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    attributes: tuple[AttributeSpec, ...] = ()
    external_id: ExternalIdSpec | None = None
    outcome: OutcomeSpec | None = None
    exclude: frozenset[str] = frozenset()
    # compared after trimming and lower-casing the cell
    missing: frozenset[str] = frozenset({""})
    auto_fields: bool = True
    unmapped: str = "attributes"
    delimiter: str = ""
    encoding: str = ""
    decimal: str = "."


def _fail(message: str) -> DomainError:
    return DomainError(f"Mapping: {message}", field="mapping")


def _string(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(f"{where} must be a text value, not {type(value).__name__}.")
    return str(value)


def _column(value: object, where: str) -> str:
    column = _string(value, where).strip()
    if not column:
        raise _fail(f"{where} names no column.")
    return column


def _tokens(value: object, where: str) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    return frozenset(_string(item, where).strip().lower() for item in items)


def _table(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be a table (TOML) or an object (JSON).")
    return value


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _fail(f"{where} has no setting {unknown[0]!r} (known: {', '.join(sorted(allowed))}).")


def normalise_delimiter(value: str) -> str:
    """`;`, `tab` or a literal `\\t` -> the one character the csv module wants."""
    if value.lower() in ("tab", "\\t"):
        return "\t"
    if len(value) != 1 or value in ('"', "\r", "\n"):
        raise DomainError(
            f"The delimiter must be one character such as , ; | or tab, not {value!r}.",
            field="delimiter",
        )
    return value


def normalise_encoding(value: str) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise DomainError(
            f"Unknown encoding {value!r}: use e.g. utf-8, latin-1 or cp1252.", field="encoding"
        ) from None


def mapping_from_dict(data: dict | None) -> Mapping:
    """Validate a parsed mapping document; every mistake is reported as a readable DomainError."""
    data = _table(data or {}, "The mapping")
    _check_keys(data, TOP_LEVEL_KEYS, "The mapping")

    fields: dict[str, str] = {}
    for name, column in _table(data.get("fields", {}), "[fields]").items():
        if name not in LEAD_FIELDS:
            raise _fail(
                f"[fields] has no lead field {name!r} (lead fields: {', '.join(LEAD_FIELDS)}); "
                "other columns belong in [attributes]."
            )
        fields[name] = _column(column, f"fields.{name}")

    constants: dict[str, str] = {}
    for name, value in _table(data.get("constants", {}), "[constants]").items():
        if name not in LEAD_FIELDS or name in ("email", "external_id"):
            raise _fail(f"[constants] cannot set {name!r}: only lead fields other than keys.")
        if name in fields:
            raise _fail(f"{name!r} is set both from a column and as a constant.")
        constants[name] = _string(value, f"constants.{name}").strip()

    external_id = None
    if "external_id" in data:
        if "external_id" in fields:
            raise _fail("the external id is set both in [fields] and in [external_id].")
        spec = data["external_id"]
        if isinstance(spec, str):
            spec = {"column": spec}
        spec = _table(spec, "[external_id]")
        _check_keys(spec, {"column", "row_number", "prefix"}, "[external_id]")
        row_number = spec.get("row_number", False)
        if not isinstance(row_number, bool):
            raise _fail("external_id.row_number must be true or false.")
        column = _column(spec["column"], "external_id.column") if "column" in spec else ""
        if bool(column) == row_number:
            raise _fail('[external_id] needs either column = "..." or row_number = true.')
        external_id = ExternalIdSpec(
            column=column,
            row_number=row_number,
            prefix=_string(spec.get("prefix", ""), "external_id.prefix"),
        )
    elif "external_id" in fields:
        external_id = ExternalIdSpec(column=fields.pop("external_id"))

    attributes: list[AttributeSpec] = []
    for key, spec in _table(data.get("attributes", {}), "[attributes]").items():
        if not key.strip():
            raise _fail("[attributes] has an empty attribute name.")
        if isinstance(spec, str):
            spec = {"column": spec}
        spec = _table(spec, f"attributes.{key}")
        _check_keys(spec, {"column", "type"}, f"attributes.{key}")
        if "column" not in spec:
            raise _fail(f'attributes.{key} needs column = "...".')
        kind = spec.get("type", "auto")
        if kind not in ATTRIBUTE_TYPES:
            raise _fail(
                f"attributes.{key}.type {kind!r} is unknown (types: {', '.join(ATTRIBUTE_TYPES)})."
            )
        attributes.append(AttributeSpec(key, _column(spec["column"], f"attributes.{key}"), kind))

    outcome = None
    if "outcome" in data:
        spec = _table(data["outcome"], "[outcome]")
        _check_keys(spec, {"column", "won", "lost", "open", "at"}, "[outcome]")
        for required in ("column", "won", "lost"):
            if required not in spec:
                raise _fail(f"[outcome] needs {required} = ...")
        won = _tokens(spec["won"], "outcome.won")
        lost = _tokens(spec["lost"], "outcome.lost")
        open_ = _tokens(spec.get("open", []), "outcome.open")
        overlap = (won & lost) | (won & open_) | (lost & open_)
        if overlap:
            raise _fail(f"outcome value {sorted(overlap)[0]!r} is listed twice.")
        outcome = OutcomeSpec(
            column=_column(spec["column"], "outcome.column"),
            won=won,
            lost=lost,
            open=open_,
            at=_column(spec["at"], "outcome.at") if "at" in spec else "",
        )

    exclude = data.get("exclude", [])
    if not isinstance(exclude, list):
        raise _fail("exclude must be a list of column names.")
    missing = _tokens(data.get("missing", [""]), "missing") | {""}

    auto_fields = data.get("auto_fields", True)
    if not isinstance(auto_fields, bool):
        raise _fail("auto_fields must be true or false.")
    unmapped = data.get("unmapped", "attributes")
    if unmapped not in ("attributes", "ignore"):
        raise _fail('unmapped must be "attributes" or "ignore".')
    decimal = data.get("decimal", ".")
    if decimal not in (".", ","):
        raise _fail('decimal must be "." or ",".')

    delimiter = _string(data.get("delimiter", ""), "delimiter")
    encoding = _string(data.get("encoding", ""), "encoding").strip()
    return Mapping(
        fields=fields,
        constants=constants,
        attributes=tuple(attributes),
        external_id=external_id,
        outcome=outcome,
        exclude=frozenset(_column(c, "exclude") for c in exclude),
        missing=missing,
        auto_fields=auto_fields,
        unmapped=unmapped,
        delimiter=normalise_delimiter(delimiter) if delimiter else "",
        encoding=normalise_encoding(encoding) if encoding else "",
        decimal=decimal,
    )


def mapping_loads(content: bytes, *, filename: str) -> dict:
    """Parse a mapping document; TOML or JSON is chosen by the file's extension."""
    suffix = Path(filename).suffix.lower()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(f"{filename} is not UTF-8 text.") from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _fail(f"{filename} is not valid TOML: {exc}.") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(
                f"{filename} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        return _table(data, f"{filename}")
    raise _fail(f"{filename}: a mapping file ends in .toml or .json.")


def mapping_read(path: str | Path) -> dict:
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}.") from None
    return mapping_loads(content, filename=path.name)


# --- the mapping applied to one file's header -------------------------------------------------


@dataclass
class Plan:
    """Column positions for one file: what each cell of a row becomes."""

    header: list[str]
    # (lead field, column index, column name)
    fields: list[tuple[str, int, str]] = field(default_factory=list)
    # (attribute key, column index, column name, type)
    attributes: list[tuple[str, int, str, str]] = field(default_factory=list)
    external_id_index: int | None = None
    outcome_index: int | None = None
    outcome_at_index: int | None = None


def header_names(cells: list[str]) -> list[str]:
    """Trimmed header cells; an empty header cell is named `column_<n>` (1-based)."""
    names = []
    for position, cell in enumerate(cells, start=1):
        name = cell.lstrip("\ufeff").strip()
        names.append(name or f"column_{position}")
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise DomainError(
                f"The header names column {name!r} twice (columns {seen[name]} and {position}); "
                "rename one of them."
            )
        seen[name] = position
    return names


def plan_for_header(mapping: Mapping, header: list[str]) -> Plan:
    by_name = {name: i for i, name in enumerate(header)}
    by_key: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        by_key.setdefault(normalise_key(name), []).append(i)

    def find(column: str, where: str) -> int:
        if column in by_name:
            return by_name[column]
        candidates = by_key.get(normalise_key(column), [])
        if len(candidates) == 1:
            return candidates[0]
        shown = ", ".join(repr(h) for h in header[:40])
        raise _fail(
            f"{where} refers to column {column!r}, which is not in the file (columns: {shown})."
        )

    plan = Plan(header=header)
    used: set[int] = set()
    for name, column in mapping.fields.items():
        index = find(column, f"fields.{name}")
        plan.fields.append((name, index, header[index]))
        used.add(index)
    if mapping.external_id and mapping.external_id.column:
        plan.external_id_index = find(mapping.external_id.column, "external_id.column")
        used.add(plan.external_id_index)
    if mapping.outcome:
        plan.outcome_index = find(mapping.outcome.column, "outcome.column")
        used.add(plan.outcome_index)
        if mapping.outcome.at:
            plan.outcome_at_index = find(mapping.outcome.at, "outcome.at")
            used.add(plan.outcome_at_index)
    keys: dict[str, str] = {}
    for spec in mapping.attributes:
        index = find(spec.column, f"attributes.{spec.key}")
        plan.attributes.append((spec.key, index, header[index], spec.type))
        keys[spec.key] = header[index]
        used.add(index)

    excluded = set()
    for column in mapping.exclude:
        index = by_name.get(column)
        if index is None and len(by_key.get(normalise_key(column), [])) == 1:
            index = by_key[normalise_key(column)][0]
        if index is None:
            continue  # one mapping may serve files with and without that column
        if index in used:
            raise _fail(f"column {header[index]!r} is both excluded and mapped.")
        excluded.add(index)

    field_targets = {name for name, _, _ in plan.fields} | set(mapping.constants)
    if plan.external_id_index is not None or (
        mapping.external_id and mapping.external_id.row_number
    ):
        field_targets.add("external_id")
    for index, name in enumerate(header):
        if index in used or index in excluded:
            continue
        if mapping.auto_fields:
            key = normalise_key(name)
            target = key if key in LEAD_FIELDS else FIELD_ALIASES.get(key)
            if target and target not in field_targets:
                field_targets.add(target)
                if target == "external_id":
                    plan.external_id_index = index
                else:
                    plan.fields.append((target, index, name))
                continue
        if mapping.unmapped == "ignore":
            continue
        key = normalise_key(name) or f"column_{index + 1}"
        if key in keys:
            raise _fail(
                f"columns {keys[key]!r} and {name!r} would both be stored as attribute {key!r}; "
                "map one of them explicitly or exclude it."
            )
        keys[key] = name
        plan.attributes.append((key, index, name, "auto"))
    return plan


# the widths the database enforces; a longer value makes a bad row instead of a failed batch
MAX_LENGTHS = {
    name: Lead._meta.get_field(name).max_length
    for name in LEAD_FIELDS
    if name not in ("source", "campaign", "company_size")
}
