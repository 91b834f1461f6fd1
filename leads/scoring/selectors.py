"""Reads of the scoring service: why a lead has its score."""

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.utils import timezone

from leads.models import Lead, ScoreSnapshot, ScoringModel, Touchpoint
from leads.scoring.compiled import compiled_model, scoring_model_active
from leads.scoring.engagement import decay
from leads.scoring.rules import (
    ATTRIBUTE_PREFIX,
    UNCAPPED,
    CompiledModel,
    fit_total,
    lead_values,
)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _group_rows(model: CompiledModel, raw: dict[str, float], kind: str) -> list[dict]:
    rows = []
    for name, value in raw.items():
        cap = model.group_caps.get(name)
        rows.append(
            {
                "name": name,
                "kind": kind,
                "cap": cap,
                "raw": value,
                "applied": min(cap, value) if cap is not None else value,
                "capped": cap is not None and value > cap,
            }
        )
    return rows


def lead_score_explain(
    *, lead: Lead, at: datetime | None = None, model: ScoringModel | None = None
) -> dict | None:
    """Why the lead scores what it scores at `at` (default now), under the active version (or
    `model`): the fit rules that matched and their points, the engagement rules with their
    occurrences and points decayed to `at`, the caps applied, the grade, and how far the lead is
    from the MQL definition. Computed from the lead and its touchpoints (so it is exact by
    definition); plain JSON-ready data, used by the lead page, the API and the MQL snapshot.
    Two queries (plus one for the source when a rule reads it and it is not loaded); None when no
    version is active."""
    at = at or timezone.now()
    compiled = compiled_model(model) if model is not None else scoring_model_active()
    if compiled is None:
        return None

    # fit
    source_key = None
    if compiled.uses_source and lead.source_id:
        source_key = lead.source.key
    values = lead_values(lead, source_key=source_key)
    matched = compiled.fit_matches(values)
    fit_groups: dict[str, float] = defaultdict(int)
    fit_rules = []
    for rule in matched:
        if rule.field.startswith(ATTRIBUTE_PREFIX):
            actual = values["attributes"].get(rule.field.removeprefix(ATTRIBUTE_PREFIX))
        else:
            actual = values.get(rule.field)
        fit_rules.append(
            {
                "key": rule.key,
                "label": rule.label,
                "field": rule.field,
                "value": _json_value(actual),
                "points": rule.points,
                "group": rule.group,
            }
        )
        if compiled.cap(rule.group) is not None:
            fit_groups[rule.group] += rule.points
    fit = fit_total(compiled, matched)

    # engagement
    h = compiled.half_life_seconds
    per_rule: dict[str, dict] = {}
    buckets: dict[str, float] = defaultdict(float)
    if compiled.kinds:
        rows = (
            Touchpoint.objects.filter(lead_id=lead.pk, kind__in=compiled.kinds, occurred_at__lte=at)
            .order_by("occurred_at")
            .values_list("kind", "campaign_id", "metadata", "occurred_at")
        )
        for kind, campaign_id, metadata, occurred_at in rows:
            weight = decay((at - occurred_at).total_seconds(), h)
            for rule in compiled.engagement_rules:
                if not rule.matches(kind, campaign_id, metadata):
                    continue
                entry = per_rule.setdefault(
                    rule.key,
                    {
                        "key": rule.key,
                        "label": rule.label,
                        "kind": rule.kind,
                        "group": rule.group,
                        "points_each": rule.points,
                        "occurrences": 0,
                        "undecayed": 0,
                        "points": 0.0,
                        "last_at": None,
                    },
                )
                entry["occurrences"] += 1
                entry["undecayed"] += rule.points
                entry["points"] += rule.points * weight
                entry["last_at"] = occurred_at.isoformat()
                buckets[rule.bucket] += rule.points * weight
    engagement_rules = [per_rule[r.key] for r in compiled.engagement_rules if r.key in per_rule]
    engagement_groups = _group_rows(
        compiled, {k: v for k, v in buckets.items() if k != UNCAPPED}, "engagement"
    )
    engagement = buckets.get(UNCAPPED, 0.0) + sum(g["applied"] for g in engagement_groups)

    total = fit + engagement
    return {
        "model": {"id": compiled.id, "label": compiled.label, "name": compiled.name},
        "at": at.isoformat(),
        "fit": {
            "score": fit,
            "rules": fit_rules,
            "groups": _group_rows(compiled, dict(fit_groups), "fit"),
        },
        "engagement": {
            "score": engagement,
            "half_life_days": compiled.half_life_days,
            "rules": engagement_rules,
            "groups": engagement_groups,
        },
        "total": total,
        "grade": compiled.grade(fit),
        "mql": {
            "total_threshold": compiled.mql_total,
            "fit_threshold": compiled.mql_fit,
            "qualifies": compiled.qualifies(fit=fit, total=total),
            "total_short": max(0.0, compiled.mql_total - total),
            "fit_short": max(0, compiled.mql_fit - fit),
        },
    }


def lead_score_history(*, lead: Lead, limit: int = 50) -> list[ScoreSnapshot]:
    """The lead's kept scores, newest first: at each MQL transition and each model change."""
    return list(
        ScoreSnapshot.objects.filter(lead=lead)
        .select_related("model")
        .order_by("-at", "-id")[:limit]
    )
