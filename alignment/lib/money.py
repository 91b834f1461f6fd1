"""Money as people read it: the company's currency (settings.COMPANY_CURRENCY) and thousands
separators, "€48,000" or "€1,250.50"; cents only when there are some. Templates use it through
the `money` filter (alignment.templatetags.money); emails built in Python call `format_money`."""

from decimal import Decimal, InvalidOperation

from django.conf import settings

# the symbol a reader expects in front of the amount; any other code is written out ("CHF 1,200")
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}
MINUS = "−"


def as_decimal(value: object) -> Decimal | None:
    """A Decimal for a number or numeric text; None for None, "" and anything else."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def format_money(value: object, *, currency: str | None = None, places: int | None = None) -> str:
    """`value` with the currency and thousands separators; "" when it is not a number. `places`
    fixes the decimals (0 for report totals); by default cents show only when there are some."""
    amount = as_decimal(value)
    if amount is None:
        return ""
    code = (currency or settings.COMPANY_CURRENCY).upper()
    if places is None:
        cents = amount.quantize(Decimal("0.01"))
        places = 0 if cents == cents.to_integral_value() else 2
    digits = f"{abs(amount):,.{places}f}"
    symbol = SYMBOLS.get(code)
    text = f"{symbol}{digits}" if symbol else f"{code} {digits}"
    # -0.001 rounded to "0" reads as zero, not as a negative amount
    negative = amount < 0 and Decimal(digits.replace(",", "")) != 0
    return f"{MINUS}{text}" if negative else text
