"""What a scoring model version says, and how one rule is evaluated (its SQL: leads.scoring.sql).

A version's spec (stored on ScoringModel, validated by `validate_spec`):

    {
      "half_life_days": 30,                     # engagement halves every 30 days
      "mql_total": 100, "mql_fit": 40,          # MQL: total >= 100 and fit >= 40
      "grade_a": 60, "grade_b": 40, "grade_c": 20,   # fit >= 60 is A, >= 40 B, >= 20 C, else D
      "group_caps": {"seniority": 30, "web": 20},
      "fit_rules": [
        {"key": "title_vp", "label": "VP or director", "field": "title", "op": "contains",
         "value": ["vp", "director"], "points": 20, "group": "seniority"},
        {"field": "attributes.seats", "op": "between", "value": [10, 500], "points": 10},
      ],
      "engagement_rules": [
        {"key": "web", "kind": "web_visit", "points": 2, "group": "web"},
        {"kind": "webinar_attended", "campaign": 7, "metadata": {"track": "pricing"}, "points": 25},
      ],
    }

Fit rules are conditions (`leads.conditions`, the evaluator routing uses too) on a lead field or
`attributes.<key>`: ops eq, ne, in, not_in, contains, gt, gte, lt, lte, between, exists, with the
values, normalisation and missing-value semantics documented there (a missing value matches
nothing but `exists: false`; text compares case-folded; a numeric text counts as its number).
Every matching rule counts; points are whole numbers, negative ones allowed. A group's sum is
limited from above by its cap (no cap: no limit).
Engagement rules match a touchpoint kind, optionally one campaign (id) and metadata values (`eq`
semantics, all must match). Every matching rule counts once per touchpoint.

The same rules are compiled to SQL (`leads.scoring.sql`: `fit_rule_sql`, `engagement_rule_sql`)
for the set-based rescore; where SQL cannot decide a rule (text that is not ASCII) it answers NULL
and the rescore scores that lead in Python. Values always travel as query parameters.
"""

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alignment.lib.errors import DomainError
from leads.conditions import (
    ATTRIBUTE_PREFIX,
    MISSING,
    NUMBER,
    SOURCE_FIELD,
    TEXT,
    Condition,
    compile_condition,
    condition_problem,
    is_real_number,
    value_problem,
)
from leads.conditions import as_number as as_number  # tuning reads values as fit rules do
from leads.conditions import is_missing as is_missing
from leads.conditions import norm_text as norm_text
from leads.models import LEAD_TEXT_FIELDS, TouchpointKind, normalise_key

TEXT_FIELDS = frozenset({*LEAD_TEXT_FIELDS, "email"})
NUMBER_FIELDS = frozenset({"company_size"})
# what each field a fit rule may test holds; `source` is the lead's source key (`google_ads`)
FIT_FIELDS: Mapping[str, str] = {
    **dict.fromkeys(TEXT_FIELDS, TEXT),
    **dict.fromkeys(NUMBER_FIELDS, NUMBER),
    SOURCE_FIELD: TEXT,
}
UNCAPPED = "_"  # engagement bucket of every rule whose group has no cap
GROUP_NAME = re.compile(r"[a-z][a-z0-9_]{0,49}")
GRADES = ("A", "B", "C", "D")
SETTINGS = ("half_life_days", "mql_total", "mql_fit", "grade_a", "grade_b", "grade_c")


class ScoringError(DomainError):
    """A scoring model or a move of one was refused; the message says why."""


def lead_values(lead: Any, *, source_key: str | None = None) -> dict[str, Any]:
    """The values fit rules read, from a Lead (or anything with the same attributes)."""
    values = {name: getattr(lead, name, None) for name in TEXT_FIELDS | NUMBER_FIELDS}
    attributes = getattr(lead, "attributes", None)
    values["attributes"] = attributes if isinstance(attributes, dict) else {}
    values[SOURCE_FIELD] = source_key
    return values


def _value_of(values: Mapping[str, Any], field_name: str) -> Any:
    if field_name.startswith(ATTRIBUTE_PREFIX):
        return values["attributes"].get(field_name.removeprefix(ATTRIBUTE_PREFIX), MISSING)
    return values.get(field_name)


# --- compiled model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitRule:
    key: str
    label: str
    field: str
    op: str
    value: Any
    points: int
    group: str
    condition: Condition

    def matches(self, values: Mapping[str, Any]) -> bool:
        return self.condition.matches(_value_of(values, self.field))


@dataclass(frozen=True)
class EngagementRule:
    key: str
    label: str
    kind: str
    campaign: int | None
    metadata: tuple[tuple[str, Condition], ...]  # each an eq condition on one metadata key
    points: int
    group: str
    bucket: str  # the anchored-sum key: the group when it has a cap, else UNCAPPED

    def matches(self, kind: str, campaign_id: int | None, metadata: Any) -> bool:
        if kind != self.kind:
            return False
        if self.campaign is not None and campaign_id != self.campaign:
            return False
        if self.metadata:
            data = metadata if isinstance(metadata, dict) else {}
            return all(c.matches(data.get(k, MISSING)) for k, c in self.metadata)
        return True


@dataclass(frozen=True)
class CompiledModel:
    """A version ready to score: rules compiled, caps and thresholds at hand."""

    id: int | None
    name: str
    half_life_days: float
    mql_total: int
    mql_fit: int
    grade_a: int
    grade_b: int
    grade_c: int
    group_caps: Mapping[str, int]
    fit_rules: tuple[FitRule, ...]
    engagement_rules: tuple[EngagementRule, ...]
    kinds: frozenset[str] = field(default=frozenset())

    @property
    def half_life_seconds(self) -> float:
        return self.half_life_days * 86400.0

    @property
    def uses_source(self) -> bool:
        return any(rule.field == SOURCE_FIELD for rule in self.fit_rules)

    @property
    def label(self) -> str:
        return f"v{self.id}" if self.id else self.name

    def grade(self, fit: int) -> str:
        if fit >= self.grade_a:
            return "A"
        if fit >= self.grade_b:
            return "B"
        if fit >= self.grade_c:
            return "C"
        return "D"

    def qualifies(self, *, fit: float, total: float) -> bool:
        return total >= self.mql_total and fit >= self.mql_fit

    def cap(self, group: str) -> int | None:
        return self.group_caps.get(group) if group else None

    def fit_matches(self, values: Mapping[str, Any]) -> list[FitRule]:
        return [rule for rule in self.fit_rules if rule.matches(values)]

    def fit_score(self, values: Mapping[str, Any]) -> int:
        return fit_total(self, self.fit_matches(values))

    def touchpoint_points(
        self, kind: str, campaign_id: int | None, metadata: Any
    ) -> dict[str, int]:
        """Points one touchpoint adds, per anchored-sum bucket (before decay)."""
        points: dict[str, int] = {}
        if kind not in self.kinds:
            return points
        for rule in self.engagement_rules:
            if rule.matches(kind, campaign_id, metadata):
                points[rule.bucket] = points.get(rule.bucket, 0) + rule.points
        return points


def fit_total(model: CompiledModel, matched: Iterable[FitRule]) -> int:
    groups: dict[str, int] = defaultdict(int)
    total = 0
    for rule in matched:
        if model.cap(rule.group) is None:
            total += rule.points
        else:
            groups[rule.group] += rule.points
    return total + sum(min(model.group_caps[g], s) for g, s in groups.items())


def compile_spec(
    spec: Mapping[str, Any], *, model_id: int | None = None, name: str = ""
) -> CompiledModel:
    """A validated spec (see `validate_spec`) made ready to score."""
    caps = {g: int(c) for g, c in (spec.get("group_caps") or {}).items()}
    fit_rules = tuple(
        FitRule(
            key=r["key"],
            label=r["label"],
            field=r["field"],
            op=r["op"],
            value=r["value"],
            points=int(r["points"]),
            group=r.get("group", ""),
            condition=compile_condition(r["op"], r["value"], field=r["field"]),
        )
        for r in spec.get("fit_rules") or ()
    )
    engagement_rules = tuple(
        EngagementRule(
            key=r["key"],
            label=r["label"],
            kind=r["kind"],
            campaign=r.get("campaign"),
            metadata=tuple(
                (k, compile_condition("eq", v))
                for k, v in sorted((r.get("metadata") or {}).items())
            ),
            points=int(r["points"]),
            group=r.get("group", ""),
            bucket=r["group"] if r.get("group") and r["group"] in caps else UNCAPPED,
        )
        for r in spec.get("engagement_rules") or ()
    )
    return CompiledModel(
        id=model_id,
        name=name,
        half_life_days=float(spec["half_life_days"]),
        mql_total=int(spec["mql_total"]),
        mql_fit=int(spec["mql_fit"]),
        grade_a=int(spec["grade_a"]),
        grade_b=int(spec["grade_b"]),
        grade_c=int(spec["grade_c"]),
        group_caps=caps,
        fit_rules=fit_rules,
        engagement_rules=engagement_rules,
        kinds=frozenset(r.kind for r in engagement_rules),
    )


# --- validation -----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def fit_rule_label(rule: Mapping[str, Any]) -> str:
    words = {
        "eq": "is",
        "ne": "is not",
        "in": "is one of",
        "not_in": "is none of",
        "contains": "contains",
        "gt": ">",
        "gte": "≥",
        "lt": "<",
        "lte": "≤",
        "between": "between",
    }
    field_name = rule["field"].removeprefix(ATTRIBUTE_PREFIX).replace("_", " ")
    if rule["op"] == "exists":
        return f"{field_name} {'is known' if rule['value'] else 'is missing'}"
    if rule["op"] == "between":
        return f"{field_name} between {_show(rule['value'][0])} and {_show(rule['value'][1])}"
    return f"{field_name} {words[rule['op']]} {_show(rule['value'])}"


def engagement_rule_label(rule: Mapping[str, Any], campaign_name: str | None = None) -> str:
    label = TouchpointKind(rule["kind"]).label
    if rule.get("campaign") is not None:
        label += f" in campaign {campaign_name or rule['campaign']}"
    for key, value in sorted((rule.get("metadata") or {}).items()):
        label += f", {key} = {_show(value)}"
    return label


def _default_key(prefix: str, *parts: Any) -> str:
    text = " ".join(json.dumps(p, sort_keys=True) if not isinstance(p, str) else p for p in parts)
    return f"{prefix}_{normalise_key(text)}"[:80]


class _Problems:
    def __init__(self, what: str, number: int, rule: Any):
        self.where = f"{what} {number}"
        if isinstance(rule, dict) and rule.get("key"):
            self.where += f" ({rule['key']})"

    def error(self, problem: str) -> ScoringError:
        return ScoringError(f"{self.where} {problem}.", field="rules")


def _points(rule: dict, problems: _Problems) -> int:
    points = rule.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise problems.error("needs points: a whole number other than 0 (negative allowed)")
    if abs(points) > 100000:
        raise problems.error("has points beyond ±100000")
    return points


def _group(rule: dict, problems: _Problems) -> str:
    group = rule.get("group") or ""
    if group and (not isinstance(group, str) or not GROUP_NAME.fullmatch(group)):
        raise problems.error(
            "has a group name that is not lower-case letters, digits and _ (starting with a letter)"
        )
    return group


def _fit_rule(rule: Any, number: int) -> dict:
    problems = _Problems("Fit rule", number, rule)
    if not isinstance(rule, dict):
        raise problems.error('must be an object like {"field": "title", "op": "contains", ...}')
    unknown = set(rule) - {"key", "label", "field", "op", "value", "points", "group"}
    if unknown:
        raise problems.error(f"has unknown keys {', '.join(sorted(unknown))}")
    problem = condition_problem(rule, fields=FIT_FIELDS)
    if problem:
        raise problems.error(problem)
    field_name, op, value = rule["field"], rule["op"], rule["value"]
    clean = {
        "key": "",
        "label": "",
        "field": field_name,
        "op": op,
        "value": value,
        "points": _points(rule, problems),
        "group": _group(rule, problems),
    }
    clean["key"] = str(rule.get("key") or _default_key("fit", field_name, op, value))
    clean["label"] = str(rule.get("label") or fit_rule_label(clean))
    return clean


def _engagement_rule(rule: Any, number: int) -> dict:
    problems = _Problems("Engagement rule", number, rule)
    if not isinstance(rule, dict):
        raise problems.error('must be an object like {"kind": "demo_request", "points": 30}')
    unknown = set(rule) - {"key", "label", "kind", "campaign", "metadata", "points", "group"}
    if unknown:
        raise problems.error(f"has unknown keys {', '.join(sorted(unknown))}")
    kind = rule.get("kind")
    if kind not in TouchpointKind.values:
        raise problems.error(
            f"has an unknown touchpoint kind {kind!r}: use one of {', '.join(TouchpointKind.values)}"
        )
    campaign = rule.get("campaign")
    if campaign is not None and (isinstance(campaign, bool) or not isinstance(campaign, int)):
        raise problems.error("names a campaign by something other than its id")
    metadata = rule.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and k and value_problem("eq", v, kind=None) is None
        for k, v in metadata.items()
    ):
        raise problems.error("needs metadata as {key: text, number or true/false}")
    clean = {
        "key": "",
        "label": "",
        "kind": kind,
        "campaign": campaign,
        "metadata": dict(sorted(metadata.items())),
        "points": _points(rule, problems),
        "group": _group(rule, problems),
    }
    clean["key"] = str(rule.get("key") or _default_key("eng", kind, campaign or "", metadata or ""))
    clean["label"] = str(rule.get("label") or engagement_rule_label(clean))
    return clean


def _int_setting(spec: Mapping[str, Any], name: str, low: int | None = None) -> int:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScoringError(f"{name} must be a whole number.", field=name)
    if low is not None and value < low:
        raise ScoringError(f"{name} must be at least {low}.", field=name)
    return value


def validate_spec(spec: Any) -> dict:
    """A clean copy of `spec` with keys and labels filled in, or a ScoringError naming the problem."""
    if not isinstance(spec, Mapping):
        raise ScoringError("A scoring model must be an object of settings and rules.")
    unknown = set(spec) - {*SETTINGS, "group_caps", "fit_rules", "engagement_rules"}
    if unknown:
        raise ScoringError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    half_life = spec.get("half_life_days")
    if not is_real_number(half_life) or not 0.01 <= half_life <= 3650:
        raise ScoringError(
            "half_life_days must be a number of days between 0.01 and 3650.",
            field="half_life_days",
        )
    clean: dict[str, Any] = {"half_life_days": float(half_life)}
    clean["mql_total"] = _int_setting(spec, "mql_total")
    clean["mql_fit"] = _int_setting(spec, "mql_fit")
    for name in ("grade_a", "grade_b", "grade_c"):
        clean[name] = _int_setting(spec, name)
    if not clean["grade_a"] >= clean["grade_b"] >= clean["grade_c"]:
        raise ScoringError("Grade thresholds must not increase from A to C.", field="grade_a")

    caps = spec.get("group_caps") or {}
    if not isinstance(caps, Mapping):
        raise ScoringError('group_caps must be an object like {"web": 20}.', field="group_caps")
    for group, cap in caps.items():
        if not isinstance(group, str) or not GROUP_NAME.fullmatch(group):
            raise ScoringError(f"Group name {group!r} is not a valid name.", field="group_caps")
        if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
            raise ScoringError(
                f"The cap of group {group} must be a whole number above 0.", field="group_caps"
            )
    clean["group_caps"] = dict(sorted(caps.items()))

    fit_rules = spec.get("fit_rules") or []
    engagement_rules = spec.get("engagement_rules") or []
    if not isinstance(fit_rules, list) or not isinstance(engagement_rules, list):
        raise ScoringError("fit_rules and engagement_rules must be lists.", field="rules")
    clean["fit_rules"] = [_fit_rule(r, n) for n, r in enumerate(fit_rules, start=1)]
    clean["engagement_rules"] = [
        _engagement_rule(r, n) for n, r in enumerate(engagement_rules, start=1)
    ]

    seen: set[str] = set()
    for rule in clean["fit_rules"] + clean["engagement_rules"]:
        if rule["key"] in seen:
            raise ScoringError(
                f"Two rules have the key {rule['key']!r}; give one of them its own key.",
                field="rules",
            )
        seen.add(rule["key"])
    fit_groups = {r["group"] for r in clean["fit_rules"] if r["group"]}
    engagement_groups = {r["group"] for r in clean["engagement_rules"] if r["group"]}
    mixed = fit_groups & engagement_groups
    if mixed:
        raise ScoringError(
            f"Group {sorted(mixed)[0]} has both fit and engagement rules; engagement decays and "
            "fit does not, so they cannot share a cap.",
            field="rules",
        )
    unused = set(caps) - fit_groups - engagement_groups
    if unused:
        raise ScoringError(
            f"Cap for group {sorted(unused)[0]}, which no rule uses.", field="group_caps"
        )
    return clean


def spec_of(model: Any) -> dict:
    """The spec stored on a ScoringModel row."""
    return {
        "half_life_days": model.half_life_days,
        "mql_total": model.mql_total,
        "mql_fit": model.mql_fit,
        "grade_a": model.grade_a,
        "grade_b": model.grade_b,
        "grade_c": model.grade_c,
        "group_caps": dict(model.group_caps or {}),
        "fit_rules": list(model.fit_rules or []),
        "engagement_rules": list(model.engagement_rules or []),
    }


# --- diff -----------------------------------------------------------------------------------------


def _rules_diff(old: list[dict], new: list[dict]) -> dict:
    before = {r["key"]: r for r in old}
    after = {r["key"]: r for r in new}
    changed = []
    for key in after.keys() & before.keys():
        fields = [
            {"field": name, "from": before[key].get(name), "to": after[key].get(name)}
            for name in sorted(before[key].keys() | after[key].keys())
            if before[key].get(name) != after[key].get(name)
        ]
        if fields:
            changed.append({"key": key, "label": after[key]["label"], "changes": fields})
    return {
        "added": [after[k] for k in after if k not in before],
        "removed": [before[k] for k in before if k not in after],
        "changed": sorted(changed, key=lambda c: c["key"]),
    }


def spec_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict:
    """What `new` changes against `old`: settings, caps, and rules added, removed or changed
    (rules are matched by key)."""
    old = old or {
        **dict.fromkeys(SETTINGS),
        "group_caps": {},
        "fit_rules": [],
        "engagement_rules": [],
    }
    settings_changes = [
        {"name": name, "from": old.get(name), "to": new.get(name)}
        for name in SETTINGS
        if old.get(name) != new.get(name)
    ]
    old_caps, new_caps = old.get("group_caps") or {}, new.get("group_caps") or {}
    caps_changes = [
        {"group": g, "from": old_caps.get(g), "to": new_caps.get(g)}
        for g in sorted(old_caps.keys() | new_caps.keys())
        if old_caps.get(g) != new_caps.get(g)
    ]
    fit = _rules_diff(old.get("fit_rules") or [], new.get("fit_rules") or [])
    engagement = _rules_diff(old.get("engagement_rules") or [], new.get("engagement_rules") or [])
    counts = {
        what: len(fit[what]) + len(engagement[what]) for what in ("added", "removed", "changed")
    }
    parts = [f"{n} rule{'s' if n != 1 else ''} {what}" for what, n in counts.items() if n]
    parts += [f"{c['name']} {c['from']} → {c['to']}" for c in settings_changes]
    parts += [f"cap of {c['group']} {c['from']} → {c['to']}" for c in caps_changes]
    return {
        "settings": settings_changes,
        "group_caps": caps_changes,
        "fit_rules": fit,
        "engagement_rules": engagement,
        "summary": "; ".join(parts) or "no changes",
    }
