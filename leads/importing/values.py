"""One cell to one value: numbers stay numbers, and a value the database would refuse is a bad row."""

import math
import re
from collections.abc import Callable
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from leads.importing.mapping import MAX_LENGTHS
from leads.models import normalise_email, normalise_key

# longer runs of digits are identifiers (account or card numbers), and JavaScript would round them
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_BIG_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = {
    ".": re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?"),
    ",": re.compile(r"-?(?:0|[1-9][0-9]*),[0-9]+(?:[eE][-+]?[0-9]+)?"),
}
_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})
POSTGRES_MAX_INT = 2_147_483_647


class CellError(ValueError):
    """The reason a cell cannot be imported, written for the person who made the file."""


def _float(text: str, decimal: str) -> float | None:
    if not _FLOAT[decimal].fullmatch(text):
        return None
    number = float(text.replace(",", ".")) if decimal == "," else float(text)
    return number if math.isfinite(number) else None


def auto_value(text: str, decimal: str = ".") -> int | float | str:
    """`42` -> 42, `1.5` -> 1.5; `007`, `+49 30 1234` and `12e3` stay text."""
    if _INT.fullmatch(text):
        return int(text)
    number = _float(text, decimal)
    return text if number is None else number


def whole_number(text: str, decimal: str = ".") -> int:
    if _BIG_INT.fullmatch(text):
        return int(text)
    number = _float(text, decimal)
    if number is not None and number.is_integer():
        return int(number)
    raise CellError(f"{text!r} is not a whole number")


def number(text: str, decimal: str = ".") -> float:
    if _BIG_INT.fullmatch(text):
        return float(text)
    value = _float(text, decimal)
    if value is None:
        raise CellError(f"{text!r} is not a number")
    return value


def boolean(text: str, decimal: str = ".") -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CellError(f"{text!r} is not yes/no, true/false or 1/0")


def attribute_converter(kind: str, decimal: str) -> Callable[[str], object]:
    if kind == "int":
        return lambda text: whole_number(text, decimal)
    if kind == "float":
        return lambda text: number(text, decimal)
    if kind == "bool":
        return boolean
    if kind == "str":
        return str
    return lambda text: auto_value(text, decimal)


def _text_converter(name: str) -> Callable[[str], str]:
    limit = MAX_LENGTHS[name]

    def convert(text: str) -> str:
        if len(text) > limit:
            raise CellError(f"{name} is longer than {limit} characters")
        return text

    return convert


def email(text: str) -> str:
    value = normalise_email(text) or ""
    if len(value) > MAX_LENGTHS["email"]:
        raise CellError(f"email is longer than {MAX_LENGTHS['email']} characters")
    try:
        validate_email(value)
    except ValidationError:
        raise CellError(f"{text!r} is not a valid email address") from None
    return value


def company_size(text: str) -> int:
    value = whole_number(text.replace("_", ""))
    if value < 0 or value > POSTGRES_MAX_INT:
        raise CellError(f"company_size {text!r} is out of range")
    return value


def source(text: str) -> tuple[str, str]:
    """(key, name): `Google`, `google ` and `GOOGLE` are one source with key `google`."""
    key = normalise_key(text)
    if not key:
        raise CellError(f"source {text!r} has no letters or digits")
    if len(text) > 100 or len(key) > 100:
        raise CellError("source is longer than 100 characters")
    return key, text


class CampaignLookup:
    """A campaign is named in a file by its name or its utm_campaign, in any letter case."""

    def __init__(self, campaigns: list[tuple[int, str, str]]):
        self.by_name = {name.strip().lower(): pk for pk, name, _ in campaigns}
        self.by_utm = {utm.strip().lower(): pk for pk, _, utm in campaigns if utm.strip()}

    def __call__(self, text: str) -> int:
        lowered = text.lower()
        pk = self.by_name.get(lowered) or self.by_utm.get(lowered)
        if pk is None:
            raise CellError(f"no campaign is named {text!r} or has it as utm_campaign")
        return pk

    def by_utm_campaign(self, text: str) -> int | None:
        return self.by_utm.get(text.lower())


def field_converters(campaigns: CampaignLookup) -> dict[str, Callable[[str], object]]:
    converters: dict[str, Callable[[str], object]] = {
        name: _text_converter(name) for name in MAX_LENGTHS
    }
    converters.update(
        email=email,
        external_id=external_id,
        company_size=company_size,
        source=source,
        campaign=campaigns,
    )
    return converters


def external_id(text: str) -> str:
    if len(text) > MAX_LENGTHS["external_id"]:
        raise CellError(f"external id is longer than {MAX_LENGTHS['external_id']} characters")
    return text


def moment(text: str, *, now: datetime) -> datetime:
    """An outcome date: `2024-03-01`, `2024-03-01 14:30` or ISO 8601 with a zone."""
    try:
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            value = datetime.combine(day, time(12)) if day else None
    except ValueError:
        value = None
    if value is None:
        raise CellError(f"{text!r} is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM)")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value > now:
        raise CellError(f"{text!r} is in the future")
    return value
