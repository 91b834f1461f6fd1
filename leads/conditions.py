"""Conditions on a lead: one evaluator for routing rules and scoring fit rules, in Python and SQL.

A condition is {"field": ..., "op": ..., "value": ...}. Routing (`leads.routing`) and scoring
(`leads.scoring.rules`) each say which lead fields a condition may test and read the lead's
value; the rest is here, once: the operators, how values are normalised, what a missing value
does, validation with readable messages, and the SQL twin the set-based rescore uses.

Values
- Missing: absent, null, or a text of nothing but whitespace (any Unicode whitespace, U+00A0
  included). A missing value matches no operator except `exists: false`; `ne` and `not_in` do
  not match it either, as in SQL: an unknown country is not "not US".
- Text compares normalised: NFKC, full Unicode case folding, NFKC again, then surrounding
  whitespace removed. "STRAßE" equals "strasse", "ＤＥ" equals "de", "Germany\\u00a0" equals
  "germany".
- A number is an int, float or decimal, or a text that spells one in ASCII
  (`[+-]digits[.digits][e[+-]digits]`, blanks around allowed: "1e3" is 1000, " 12.5 " is 12.5,
  "1,000" is not a number). Beyond ±1e300, or nearer to 0 than 1e-300, nothing is a number, so
  that PostgreSQL's float8 can neither overflow nor underflow.
- true/false only equal true/false. Lists and objects (imported attributes) exist; `contains`
  looks for an element of a list; every other operator is false on them.

Operators
- eq, ne, in, not_in: when either side is a number both compare as numbers (a numeric text is
  its number: CSV imports are not always typed); two texts compare as texts ("12" and "12.0" are
  different texts).
- contains (a text or a list of texts: any of them): a substring of the normalised text, not
  stripped (" vp " skips "mvp"); on a list attribute, an element equal to it (as eq).
- gt, gte, lt, lte, between ([low, high], inclusive): a number compares numbers; a text that is
  not a number (a date "2024-03-01", a letter "M") compares normalised texts by code point.
- exists (true/false): the value is not missing.
`source` compares the source key: rule values go through `normalise_key` ("Google Ads" finds
google_ads; stored keys are normalised already).

SQL (PostgreSQL): `condition_sql` compiles a condition into a three-valued boolean: true or false
where it is certain to give what `Condition.matches` gives, NULL where it cannot. Whitespace
(btrim with WHITESPACE), missing values, numbers (the same regular expression, exact numeric
bounds, float8 from the exact decimal) and true/false are reproduced exactly. Case folding is not
reproducible: lower() follows the database locale (in tr_TR, "I" becomes "ı") and has no full
folding or NFKC (ß, ligatures, fullwidth letters: 1,405 non-ASCII characters fold to ASCII). So
SQL folds only text that is ASCII once trimmed (lower() under the "C" collation: A-Z alone),
and answers NULL for any other text it must compare. The set-based rescore first asks which
leads of a batch get a NULL from some rule and scores those with this Python evaluator, the
others in one statement (`leads.scoring.sql`): every stored score is the Python evaluator's,
and only leads with non-ASCII compared text pay for Python. Folding at write time instead would
need a normalised copy of every text field and attribute on the lead (a schema change for every
attribute name), and a folding table applied in SQL would slow every lead down.
"""

import operator
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from leads.models import normalise_key

ATTRIBUTE_PREFIX = "attributes."
SOURCE_FIELD = "source"
OPS = ("eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "between", "exists")
LIST_OPS = ("in", "not_in")
# what a lead field holds; an attribute may hold anything
TEXT, NUMBER = "text", "number"

MISSING = object()

# the characters str.strip() removes (str.isspace), for btrim() in SQL; a test checks the list
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# digits bounded so PostgreSQL's numeric input always accepts what matches (exponent below 1000)
NUMBER_TEXT = r"[-+]?(?:[0-9]{1,100}(?:\.[0-9]{0,100})?|\.[0-9]{1,100})(?:[eE][-+]?[0-9]{1,3})?"
_NUMBER_TEXT = re.compile(NUMBER_TEXT)
_SMALLEST, _LARGEST = Decimal("1e-300"), Decimal("1e300")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


# --- values ---------------------------------------------------------------------------------------


def _in_range(number: Decimal) -> bool:
    return number.is_zero() or _SMALLEST <= abs(number) < _LARGEST


def is_real_number(value: Any) -> bool:
    """A number by type (int, float, decimal), not a text and not true/false."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def as_number(value: Any) -> float | None:
    """The number a value stands for (a number, or a text that spells one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if 1e-299 < abs(value) < 1e299 or value == 0:
            return value
        # at the edges, as PostgreSQL sees it: the decimal JSON stores (repr)
        return value if value == value and _in_range(Decimal(repr(value))) else None
    if isinstance(value, int | Decimal):
        exact = Decimal(value)
        return float(exact) if exact.is_finite() and _in_range(exact) else None
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_TEXT.fullmatch(text) and _in_range(Decimal(text)):
            return float(text)
    return None


def is_missing(value: Any) -> bool:
    return value is MISSING or value is None or (isinstance(value, str) and not value.strip())


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def norm_text(text: str) -> str:
    """A text as conditions compare it: NFKC, case-folded, without surrounding whitespace."""
    return _fold(text).strip()


@dataclass(frozen=True)
class Value:
    """One value of a condition, normalised once: a text (with the number it spells, if any), a
    number, or true/false."""

    text: str | None = None
    number: float | None = None
    boolean: bool | None = None


def _value(value: Any) -> Value:
    if isinstance(value, bool):
        return Value(boolean=value)
    if isinstance(value, str):
        return Value(text=norm_text(value), number=as_number(value))
    return Value(number=as_number(value))


def _equals(actual: Any, value: Value) -> bool:
    if isinstance(actual, bool) or value.boolean is not None:
        return isinstance(actual, bool) and actual is value.boolean
    if value.text is None or is_real_number(actual):  # a number on either side
        number = as_number(actual)
        return number is not None and number == value.number
    return isinstance(actual, str) and norm_text(actual) == value.text


def _ordered(op: str, actual: Any, value: Value) -> bool:
    if isinstance(actual, bool):
        return False
    if value.text is None or is_real_number(actual):
        number = as_number(actual)
        return (
            number is not None and value.number is not None and _COMPARE[op](number, value.number)
        )
    return isinstance(actual, str) and _COMPARE[op](norm_text(actual), value.text)


@dataclass(frozen=True)
class Condition:
    """A valid condition with its values normalised (`compile_condition`), ready to evaluate."""

    op: str
    values: tuple[Value, ...] = ()  # one; any number for in, not_in, contains; two for between
    needles: tuple[str, ...] = ()  # contains: folded, not stripped
    exists: bool = False

    @property
    def compares_text(self) -> bool:
        """Whether SQL may have to leave it to Python (it compares some text)."""
        return self.op == "contains" or any(v.text is not None for v in self.values)

    def matches(self, actual: Any) -> bool:
        """Whether the value read from a lead (MISSING when absent) meets the condition."""
        op = self.op
        if op == "exists":
            return (not is_missing(actual)) is self.exists
        if is_missing(actual):
            return False
        if op in ("eq", "in"):
            return any(_equals(actual, v) for v in self.values)
        if op in ("ne", "not_in"):
            return not any(_equals(actual, v) for v in self.values)
        if op == "contains":
            if isinstance(actual, list):
                return any(_equals(item, v) for item in actual for v in self.values)
            if isinstance(actual, str):
                folded = _fold(actual)
                return any(needle in folded for needle in self.needles)
            return False
        if op == "between":
            low, high = self.values
            return _ordered("gte", actual, low) and _ordered("lte", actual, high)
        return _ordered(op, actual, self.values[0])


def compile_condition(op: str, value: Any, *, field: str = "") -> Condition:
    """A condition that `condition_problem` accepts, made ready to evaluate."""
    if op == "exists":
        return Condition(op, exists=bool(value))
    several = op in (*LIST_OPS, "between") or (op == "contains" and isinstance(value, list))
    values = list(value) if several else [value]
    if field == SOURCE_FIELD:
        values = [normalise_key(v) if isinstance(v, str) else v for v in values]
    needles = tuple(_fold(v) for v in values) if op == "contains" else ()
    return Condition(op, tuple(_value(v) for v in values), needles)


# --- validation -----------------------------------------------------------------------------------


def condition_problem(condition: Mapping[str, Any], *, fields: Mapping[str, str]) -> str | None:
    """What is wrong with a condition's field, op and value, in words that follow its name
    ("Condition 2 (...) ..."), or None. `fields` maps the lead fields a condition may test to
    TEXT or NUMBER; `attributes.<key>` may always be tested."""
    field, op = condition.get("field"), condition.get("op")
    if not isinstance(field, str) or not field:
        return "needs a field"
    kind = None
    if field.startswith(ATTRIBUTE_PREFIX):
        if not field.removeprefix(ATTRIBUTE_PREFIX):
            return "names no attribute: write attributes.<key>"
    elif field in fields:
        kind = fields[field]
    else:
        return (
            f"tests an unknown field {field!r}: use one of {', '.join(sorted(fields))} "
            "or attributes.<key>"
        )
    if op not in OPS:
        return f"has an unknown op {op!r}: use one of {', '.join(OPS)}"
    if "value" not in condition:
        return "needs a value"
    return value_problem(op, condition["value"], kind=kind, field=field)


def _text_ok(value: Any, field: str) -> bool:
    if not isinstance(value, str):
        return False
    return bool(normalise_key(value) if field == SOURCE_FIELD else value.strip())


def value_problem(op: str, value: Any, *, kind: str | None, field: str = "") -> str | None:
    """What is wrong with `value` for `op` on a field holding `kind` (TEXT, NUMBER, or None for
    anything), or None."""
    what = {NUMBER: "a number", TEXT: "a text"}.get(kind, "a text, a number or true/false")

    def scalar_ok(v: Any) -> bool:
        number = is_real_number(v) and as_number(v) is not None
        if kind == NUMBER:
            return number
        if kind == TEXT:
            return _text_ok(v, field)
        return number or isinstance(v, bool) or _text_ok(v, field)

    if op == "exists":
        return None if isinstance(value, bool) else "needs true or false as value"
    if op == "contains":
        if kind == NUMBER:
            return "cannot use contains on a number field"
        needles = [value] if isinstance(value, str) else value
        if isinstance(needles, list) and needles and all(_text_ok(n, field) for n in needles):
            return None
        return "needs a text or a non-empty list of texts"
    if op in ("eq", "ne"):
        return None if scalar_ok(value) else f"needs {what} as value"
    if op in LIST_OPS:
        if isinstance(value, list) and value and all(map(scalar_ok, value)):
            return None
        return f"needs a non-empty list of values, each {what}"
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2):
            each = "a number" if kind == NUMBER else "a number or a text"
            return f"needs [low, high], each {each}"
        for bound in value:
            problem = _bound_problem(bound, kind=kind, field=field)
            if problem:
                return problem
        low, high = map(_value, value)
        if (low.text is None) != (high.text is None):
            return "needs low and high of the same kind"
        if low.number > high.number if low.text is None else low.text > high.text:
            return "has low above high"
        return None
    return _bound_problem(value, kind=kind, field=field)


def _bound_problem(value: Any, *, kind: str | None, field: str) -> str | None:
    """An ordering value: a number, or (not on number fields) a text that is not a number."""
    number = is_real_number(value) and as_number(value) is not None
    if kind == NUMBER:
        return None if number else "needs a number as value"
    spelled = isinstance(value, str) and as_number(value) is not None
    if kind == TEXT and (number or spelled):
        return f"cannot compare {field} as a number"
    if spelled:
        return (
            f"compares {value.strip()!r} as a text: write {value.strip()} without quotes to "
            "compare numbers"
        )
    if number or _text_ok(value, field):
        return None
    return "needs a number or a text as value"


# --- SQL ------------------------------------------------------------------------------------------


class SqlParams:
    """Named parameters for one statement: every value goes through the driver, never the text."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


@dataclass(frozen=True)
class SqlValue:
    """Where SQL reads the value a condition tests: a jsonb value (`expr`, with `text` its
    ->> text), or a text or integer expression. Any of them may be NULL."""

    kind: str  # "json", "text" or "integer"
    expr: str
    text: str = ""

    @classmethod
    def json_key(cls, doc: str, key: str, p: SqlParams) -> "SqlValue":
        k = p(key)
        return cls("json", f"({doc} -> {k})", f"({doc} ->> {k})")


class _Reader:
    """SQL expressions for one SqlValue: its type tests, whether it is missing, its number, and
    its folded text (NULL when the text is not ASCII: Python decides)."""

    def __init__(self, value: SqlValue, p: SqlParams):
        self.value, self.p = value, p
        ws, false = p(WHITESPACE), "false"
        if value.kind == "json":
            typ = f"jsonb_typeof({value.expr})"
            self.text = value.text
            self.string, self.list = f"({typ} = 'string')", f"({typ} = 'array')"
            self.bool, self.real_number = f"({typ} = 'boolean')", f"({typ} = 'number')"
            self.real = (
                f"(CASE WHEN {typ} = 'number' THEN {self._float(f'({value.expr})::numeric')} END)"
            )
            blank = f"({typ} = 'string' AND btrim({self.text}, {ws}) = '')"
            self.missing = f"(coalesce({typ}, 'null') = 'null' OR {blank})"
        elif value.kind == "text":
            self.text = value.expr
            self.string, self.list, self.bool, self.real_number = "true", false, false, false
            self.real = "NULL::float8"
            self.missing = f"(btrim(coalesce({value.expr}, ''), {ws}) = '')"
        else:
            self.text = "NULL::text"
            self.string, self.list, self.bool, self.real_number = false, false, false, "true"
            self.real = f"({value.expr})::float8"
            self.missing = f"({value.expr} IS NULL)"
        trimmed = f"btrim({self.text}, {ws})"
        spelled = (
            f"(CASE WHEN {trimmed} ~ {p(f'^(?:{NUMBER_TEXT})$')} "
            f"THEN {self._float(f'({trimmed})::numeric')} END)"
        )
        self.number = (
            self.real
            if value.kind == "integer"
            else f"(CASE WHEN {self.real_number} THEN {self.real} "
            f"WHEN {self.string} THEN {spelled} END)"
        )
        self.folded = self._ascii_lower(trimmed)
        self.lowered = self._ascii_lower(self.text)

    def _float(self, numeric: str) -> str:
        low, high = self.p(_SMALLEST), self.p(_LARGEST)
        return (
            f"CASE WHEN {numeric} = 0 OR (abs({numeric}) >= {low}::numeric "
            f"AND abs({numeric}) < {high}::numeric) THEN ({numeric})::float8 END"
        )

    @staticmethod
    def _ascii_lower(text: str) -> str:
        # octet and character lengths agree only for ASCII in UTF-8; lower() under the "C"
        # collation maps A-Z alone, whatever the database's locale
        return (
            f"(CASE WHEN octet_length({text}) = char_length({text}) "
            f'THEN lower({text} COLLATE "C") END)'
        )

    def when_string(self, test: str) -> str:
        return f"(CASE WHEN {self.string} THEN {test} ELSE false END)"

    def equals_any(self, values: tuple[Value, ...]) -> str:
        p, parts = self.p, []
        texts = [v.text for v in values if v.text is not None]
        numbers = [v.number for v in values if v.text is None and v.number is not None]
        spelled = [v.number for v in values if v.text is not None and v.number is not None]
        booleans = ["true" if v.boolean else "false" for v in values if v.boolean is not None]
        if texts:
            parts.append(self.when_string(f"{self.folded} = ANY({p(texts)}::text[])"))
        if numbers:
            parts.append(f"coalesce({self.number} = ANY({p(numbers)}::float8[]), false)")
        if spelled and self.value.kind != "text":
            parts.append(f"coalesce({self.real} = ANY({p(spelled)}::float8[]), false)")
        if booleans and self.value.kind == "json":
            parts.append(f"({self.bool} AND {self.text} = ANY({p(booleans)}::text[]))")
        return "(" + (" OR ".join(parts) or "false") + ")"

    def ordered(self, op: str, value: Value) -> str:
        sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        if value.text is None:
            return f"coalesce({self.number} {sign} {self.p(value.number)}::float8, false)"
        return self.when_string(f'({self.folded} COLLATE "C") {sign} {self.p(value.text)}')

    def contains(self, condition: Condition) -> str:
        patterns = ["%" + re.sub(r"([\\%_])", r"\\\1", n) + "%" for n in condition.needles]
        test = self.when_string(f"({self.lowered} LIKE ANY({self.p(patterns)}::text[]))")
        if self.value.kind != "json":
            return test
        element = _Reader(SqlValue("json", "cond_e", "(cond_e #>> '{}')"), self.p)
        m = element.equals_any(condition.values)
        # true if an element is equal, NULL if none is but one is undecided, else false
        member = (
            "(SELECT CASE WHEN bool_or(m) THEN true WHEN bool_or(m IS NULL) THEN NULL "
            f"ELSE false END FROM (SELECT {m} AS m FROM jsonb_array_elements({self.value.expr}) "
            "AS cond_e) AS cond_elements)"
        )
        return f"({test} OR (CASE WHEN {self.list} THEN {member} ELSE false END))"


def condition_sql(condition: Condition, value: SqlValue, p: SqlParams) -> str:
    """A boolean SQL expression: true or false where it agrees with `condition.matches` for
    certain, NULL where only Python can tell (text that is not ASCII; see the module docstring)."""
    r = _Reader(value, p)
    op = condition.op
    if op == "exists":
        return f"(NOT {r.missing})" if condition.exists else r.missing
    if op in ("eq", "in"):
        test = r.equals_any(condition.values)
    elif op in ("ne", "not_in"):
        test = f"(NOT {r.equals_any(condition.values)})"
    elif op == "contains":
        test = r.contains(condition)
    elif op == "between":
        low, high = condition.values
        test = f"({r.ordered('gte', low)} AND {r.ordered('lte', high)})"
    else:
        test = r.ordered(op, condition.values[0])
    return f"(CASE WHEN {r.missing} THEN false ELSE {test} END)"


def undecided_possible_sql(value: SqlValue) -> str:
    """A cheap SQL test, true wherever `condition_sql` on `value` may be NULL: the value holds
    text that is not ASCII (the only case SQL leaves to Python)."""
    if value.kind == "integer":
        return "false"
    raw = f"({value.expr})::text" if value.kind == "json" else value.expr
    return f"(octet_length({raw}) <> char_length({raw}))"
