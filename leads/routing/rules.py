"""Routing rules' conditions: which lead fields they may test, validation, matching, and the
conditions in words (the People and routing page and the tester say why a rule did not match)."""

import logging
from typing import Any

from alignment.lib.errors import DomainError
from leads.conditions import (
    ATTRIBUTE_PREFIX,
    MISSING,
    NUMBER,
    TEXT,
    compile_condition,
    condition_problem,
    is_missing,
)
from leads.models import LEAD_TEXT_FIELDS, AssignmentRule, Lead

logger = logging.getLogger("leads.routing")

# Lead fields a condition may test; `source` compares with Source.key, `campaign` with its name.
TEXT_FIELDS = frozenset({*LEAD_TEXT_FIELDS, "email", "source", "campaign", "stage", "grade"})
NUMBER_FIELDS = frozenset(
    {"company_size", "fit_score", "engagement_score", "score", "mql_count", "deal_value"}
)
LEAD_FIELDS = {**dict.fromkeys(TEXT_FIELDS, TEXT), **dict.fromkeys(NUMBER_FIELDS, NUMBER)}

# how each op reads in a sentence ("country is one of DE, AT")
OP_WORDS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between",
    "exists": "is given",
}


class RoutingError(DomainError):
    """A routing rule or a manual assignment was refused; the message says why."""


def _lead_value(lead: Lead, field: str) -> Any:
    if field.startswith(ATTRIBUTE_PREFIX):
        attributes = lead.attributes if isinstance(lead.attributes, dict) else {}
        return attributes.get(field.removeprefix(ATTRIBUTE_PREFIX), MISSING)
    if field == "source":
        return lead.source.key if lead.source else None
    if field == "campaign":
        return lead.campaign.name if lead.campaign else None
    return getattr(lead, field)


def condition_error(condition: Any) -> str | None:
    """What is wrong with one condition, in words that follow "This condition …", or None."""
    if not isinstance(condition, dict):
        return 'must be an object like {"field": "country", "op": "eq", "value": "DE"}'
    unknown = sorted(set(condition) - {"field", "op", "value"})
    if unknown:
        return f"has unknown keys {', '.join(unknown)} (allowed: field, op, value)"
    return condition_problem(condition, fields=LEAD_FIELDS)


def validate_conditions(conditions: list) -> None:
    """Refuse conditions that could never be evaluated, naming the bad one.

    A condition is {"field": ..., "op": ..., "value": ...}; all must match, and [] matches every
    lead. `field` is a lead field (see LEAD_FIELDS; `source` is the source key, `campaign` the
    campaign name) or `attributes.<key>`. Ops and semantics are those of `leads.conditions`:
    eq, ne, in, not_in (lists), contains (substring; membership for a list attribute), gt, gte,
    lt, lte, between ([low, high], inclusive), exists (true/false); text compares case-folded,
    numbers as numbers (a numeric text counts as its number)."""
    if not isinstance(conditions, list):
        raise RoutingError(
            'Conditions must be a list of {"field", "op", "value"} objects.', field="conditions"
        )
    for number, condition in enumerate(conditions, start=1):
        problem = condition_error(condition)
        if problem:
            if isinstance(condition, dict):
                shown = " ".join(
                    repr(condition.get(k)) if k == "value" else str(condition.get(k, "?"))
                    for k in ("field", "op", "value")
                )
            else:
                shown = repr(condition)
            raise RoutingError(f"Condition {number} ({shown}) {problem}.", field="conditions")


def field_words(field: str) -> str:
    if field.startswith(ATTRIBUTE_PREFIX):
        return f"attribute “{field.removeprefix(ATTRIBUTE_PREFIX)}”"
    return field.replace("_", " ")


def _value_words(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_value_words(v) for v in value)
    return str(value)


def condition_words(condition: dict) -> str:
    """One condition as a sentence: "country is one of DE, AT", "company size is between 10 and 50"."""
    field, op, value = condition.get("field", "?"), condition.get("op", "?"), condition.get("value")
    subject = field_words(str(field))
    if op == "exists":
        return f"{subject} {'is given' if value else 'is missing'}"
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return f"{subject} is between {_value_words(value[0])} and {_value_words(value[1])}"
    return f"{subject} {OP_WORDS.get(op, op)} {_value_words(value)}"


def rule_words(rule: AssignmentRule) -> list[str]:
    """The rule's conditions as sentences; a rule without conditions takes every lead."""
    if not isinstance(rule.conditions, list):
        return ["(conditions are not a list: this rule never matches)"]
    return [condition_words(c) if isinstance(c, dict) else repr(c) for c in rule.conditions] or [
        "every lead"
    ]


def rule_failure(*, rule: AssignmentRule, lead: Lead) -> str | None:
    """Why the rule does not match the lead, as a sentence, or None when it matches.
    A rule with invalid conditions never matches; that is logged and said."""
    try:
        validate_conditions(rule.conditions)
    except RoutingError as error:
        logger.warning("Routing rule %r (id %s) is skipped: %s", rule.name, rule.pk, error.message)
        return f"Its conditions are invalid, so it never matches: {error.message}"
    for condition in rule.conditions:
        actual = _lead_value(lead, condition["field"])
        compiled = compile_condition(condition["op"], condition["value"], field=condition["field"])
        if not compiled.matches(actual):
            shown = "missing" if is_missing(actual) else f"“{_value_words(actual)}”"
            return (
                f"Not {condition_words(condition)}: the lead's {field_words(condition['field'])} "
                f"is {shown}."
            )
    return None


def rule_matches(*, rule: AssignmentRule, lead: Lead) -> bool:
    """Whether all the rule's conditions match the lead; a rule with invalid conditions never does."""
    return rule_failure(rule=rule, lead=lead) is None
