"""Time zones as people meet them: each person reads and types times in their own working time
zone; emails, tasks and anything sent to many people use the company's settings.TIME_ZONE.

The one date/time format of the app lives here; templates use it through alignment.templatetags."""

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone
from django.utils.dateformat import format as date_format

# Django format strings (the `date` filter's language); ISO order reads the same in every country
DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = f"{DATE_FORMAT} H:i"
# for text read away from the app (emails): the zone abbreviation goes with every time
DATETIME_ZONE_FORMAT = f"{DATETIME_FORMAT} T"
# what a `datetime-local` input sends and shows (browsers send seconds only when step < 60)
DATETIME_LOCAL_INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
DATETIME_LOCAL_FORMAT = DATETIME_LOCAL_INPUT_FORMATS[0]


def zone_or_none(name: str) -> ZoneInfo | None:
    """The zone named `name`, or None when it is empty or unknown to this machine's tz database."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not a zone key at all ("../x")
        return None


def company_timezone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def as_datetime(value: object) -> datetime | None:
    """A datetime, or one stored as ISO 8601 text (JSON details, score explanations); else None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def format_datetime(
    value: datetime, *, fmt: str = DATETIME_FORMAT, zone: ZoneInfo | None = None
) -> str:
    """`value` in `zone` (default: the zone active for this request) in the app's format. A naive
    value is shown as it is, as Django's templates do."""
    if timezone.is_aware(value):
        value = timezone.localtime(value, zone)
    return date_format(value, fmt)


def zone_label() -> str:
    """The active zone for a page header: "Europe/Berlin (CET)", or "UTC" where name and
    abbreviation are the same."""
    name = timezone.get_current_timezone_name()
    abbreviation = timezone.localtime().tzname() or ""
    return name if abbreviation in ("", name) else f"{name} ({abbreviation})"
