"""The draft editor's form: the numbers as inputs, the rule lists as JSON one rule per line."""

import json
from typing import Any

from django import forms

from alignment.lib.errors import DomainError
from leads.models import TouchpointKind
from leads.scoring.models import ModelAction, ScoringModel
from leads.scoring.rules import engagement_rule_label, fit_rule_label, spec_of

FIT_EXAMPLE = (
    '[\n  {"field": "title", "op": "contains", "value": ["vp", "director"], "points": 20, '
    '"group": "seniority"},\n'
    '  {"field": "company_size", "op": "between", "value": [50, 1000], "points": 15},\n'
    '  {"field": "attributes.seats", "op": "gte", "value": 10, "points": 10}\n]'
)
ENGAGEMENT_EXAMPLE = (
    '[\n  {"kind": "demo_request", "points": 30},\n'
    '  {"kind": "web_visit", "points": 2, "group": "web"}\n]'
)
CAPS_EXAMPLE = '{"seniority": 30, "web": 20}'


def _auto_label(rule: dict, *, engagement: bool) -> bool:
    """Whether a rule's label is the one the service would write, so it can be left out and
    follow the rule when it is edited."""
    try:
        if engagement:
            kind_label = TouchpointKind(rule["kind"]).label
            if rule.get("campaign") is not None:
                return str(rule.get("label", "")).startswith(f"{kind_label} in campaign ")
            return rule.get("label") == engagement_rule_label(rule)
        return rule.get("label") == fit_rule_label(rule)
    except (KeyError, ValueError, IndexError, TypeError):
        return False


def _rules_text(rules: list[dict], *, engagement: bool) -> str:
    rows = []
    for rule in rules:
        shown = {k: v for k, v in rule.items() if v not in ("", None, {})}
        if _auto_label(rule, engagement=engagement):
            shown.pop("label", None)
        rows.append("  " + json.dumps(shown, ensure_ascii=False))
    return "[\n" + ",\n".join(rows) + "\n]" if rows else "[]"


def _json_field(label: str, rows: int, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": rows, "spellcheck": "false", "class": "code"}),
    )


class DraftForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Description"
    )
    mql_total = forms.IntegerField(label="MQL when total ≥")
    mql_fit = forms.IntegerField(label="and fit ≥")
    grade_a = forms.IntegerField(label="Grade A when fit ≥")
    grade_b = forms.IntegerField(label="Grade B when fit ≥")
    grade_c = forms.IntegerField(label="Grade C when fit ≥ (below: D)")
    half_life_days = forms.FloatField(label="Engagement halves every (days)")
    fit_rules = _json_field("Fit rules", 18, f"One rule per line, for example:\n{FIT_EXAMPLE}")
    engagement_rules = _json_field(
        "Engagement rules", 10, f"One rule per line, for example:\n{ENGAGEMENT_EXAMPLE}"
    )
    group_caps = _json_field(
        "Group caps", 2, f"The most points a group of rules can give, for example: {CAPS_EXAMPLE}"
    )
    # when the editor was opened: a save over someone else's newer save is refused, not merged
    loaded_at = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, model: ScoringModel | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.model = model

    @classmethod
    def for_model(cls, model: ScoringModel) -> "DraftForm":
        spec = spec_of(model)
        return cls(
            model=model,
            initial={
                "loaded_at": model.updated_at.isoformat(),
                "name": model.name,
                "description": model.description,
                **{k: spec[k] for k in ("mql_total", "mql_fit", "grade_a", "grade_b", "grade_c")},
                "half_life_days": spec["half_life_days"],
                "fit_rules": _rules_text(spec["fit_rules"], engagement=False),
                "engagement_rules": _rules_text(spec["engagement_rules"], engagement=True),
                "group_caps": json.dumps(spec["group_caps"]),
            },
        )

    def _json(self, name: str, empty: Any) -> Any:
        text = self.cleaned_data.get(name, "").strip()
        if not text:
            return empty
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
                "Check for a missing comma or quote, or a comma after the last rule."
            ) from exc
        if not isinstance(value, type(empty)):
            raise forms.ValidationError(
                "Write a list in [ … ]." if isinstance(empty, list) else "Write an object in { … }."
            )
        return value

    def clean_fit_rules(self) -> list:
        return self._json("fit_rules", [])

    def clean_engagement_rules(self) -> list:
        return self._json("engagement_rules", [])

    def clean_group_caps(self) -> dict:
        return self._json("group_caps", {})

    def clean(self) -> dict:
        data = super().clean()
        model = self.model
        if model is not None and data.get("loaded_at") != model.updated_at.isoformat():
            by = model.events.filter(action=ModelAction.EDITED).order_by("-at").first()
            who = f" by {by.by}" if by and by.by else ""
            raise forms.ValidationError(
                f"{model} was saved{who} after you opened it. Nothing of yours was saved: copy "
                "your changes, reload the page to see the newer version, and apply them again."
            )
        return data

    def spec(self) -> dict:
        data = self.cleaned_data
        return {
            "half_life_days": data["half_life_days"],
            **{k: data[k] for k in ("mql_total", "mql_fit", "grade_a", "grade_b", "grade_c")},
            "group_caps": data["group_caps"],
            "fit_rules": data["fit_rules"],
            "engagement_rules": data["engagement_rules"],
        }

    def add_domain_error(self, exc: DomainError) -> None:
        """The service's message next to the field it names (at the top when it names none)."""
        field = exc.field
        if field == "rules":
            field = "engagement_rules" if exc.message.startswith("Engagement") else "fit_rules"
            if not exc.message.startswith(("Engagement", "Fit")):
                field = None
        self.add_error(field if field in self.fields else None, exc.message)
