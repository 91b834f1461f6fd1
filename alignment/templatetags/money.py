"""`{{ lead.deal_value|money }}`: an amount in the company's currency, "€48,000" (see
alignment.lib.money); `|money:0` without cents. Empty for None, so `|money|default:"—"` reads.
A builtin (settings.TEMPLATES): no {% load %} needed."""

from django import template
from django.conf import settings

from alignment.lib.money import format_money

register = template.Library()


@register.filter
def money(value: object, places: object = None) -> str:
    return format_money(value, places=None if places in (None, "") else int(places))


@register.simple_tag
def company_currency() -> str:
    return settings.COMPANY_CURRENCY
