"""The app's one way to show a moment: `{{ value|local_datetime }}` (or `|local_date`) in the
viewer's zone, `{{ value|company_datetime }}` in the company's zone with its abbreviation (emails).
Values may be datetimes or ISO 8601 text. A builtin (settings.TEMPLATES): no {% load %} needed."""

from django import template
from django.conf import settings

from alignment.lib.timezones import (
    DATE_FORMAT,
    DATETIME_ZONE_FORMAT,
    as_datetime,
    company_timezone,
    format_datetime,
    zone_label,
)

register = template.Library()


@register.filter
def local_datetime(value: object) -> str:
    moment = as_datetime(value)
    return "" if moment is None else format_datetime(moment)


@register.filter
def local_date(value: object) -> str:
    moment = as_datetime(value)
    return "" if moment is None else format_datetime(moment, fmt=DATE_FORMAT)


@register.filter
def company_datetime(value: object) -> str:
    moment = as_datetime(value)
    if moment is None:
        return ""
    return format_datetime(moment, fmt=DATETIME_ZONE_FORMAT, zone=company_timezone())


@register.simple_tag
def local_zone() -> str:
    return zone_label()


@register.simple_tag
def company_zone() -> str:
    return settings.TIME_ZONE
