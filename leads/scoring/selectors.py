"""Reads of the scoring service: why a lead has its score."""

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.utils import timezone

from alignment.models import User
from alignment.signoff import approval_state
from leads.models import Lead, ScoreSnapshot, ScoringModel, Touchpoint
from leads.scoring.compiled import compiled_model, scoring_model_active
from leads.scoring.engagement import decay
from leads.scoring.models import ModelAction, ModelStatus
from leads.scoring.rules import (
    ATTRIBUTE_PREFIX,
    UNCAPPED,
    CompiledModel,
    fit_total,
    lead_values,
    spec_diff,
    spec_of,
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


# --- what a manager signs -------------------------------------------------------------------------

# what else is at stake when a proposal is not shown to be better, by the verdict's level
# (leads.scoring.tuning.evaluate.verdict)
VERDICT_RISKS = {
    "worse": (
        "Approving it is allowed, but once it is active sales would receive MQLs ranked worse "
        "than today's: leads that convert less often would be routed first."
    ),
    "within_noise": (
        "Approving it is allowed, but nothing shows it ranks leads better than the version in "
        "force: grades would change and leads become MQLs without a measured gain."
    ),
}
VERDICT_TITLES = {
    "worse": "Warning: this proposal scores leads worse than the version in force",
    "within_noise": "Warning: this proposal is not clearly better than the version in force",
}
OTHER_TITLE = "Warning: this proposal was not shown to be better than the version in force"
OTHER_RISK = (
    "Approving it is allowed, but it was not shown to rank leads better than the version in force."
)


def scoring_model_diff(*, model: ScoringModel) -> tuple[dict, ScoringModel | None]:
    """A version's changes and the version they are against: a draft against the version in
    force now; any other version keeps the diff it was proposed (or activated) with."""
    if model.status != ModelStatus.DRAFT:
        return model.diff, model.diff_base
    active = ScoringModel.objects.filter(status=ModelStatus.ACTIVE).first()
    return spec_diff(spec_of(active) if active else None, spec_of(model)), active


def scoring_model_preview(*, model: ScoringModel) -> tuple[dict | None, bool]:
    """The activation preview kept on the version (how many leads become MQLs and change grade)
    and whether a kept one is stale: counted before the version's last change, so it describes
    rules the version no longer has."""
    preview = (model.report or {}).get("activation_preview")
    if not preview:
        return None, False
    if datetime.fromisoformat(preview["at"]) < model.updated_at:
        return None, True
    return preview, False


def scoring_model_verdict(*, model: ScoringModel, active: ScoringModel | None) -> dict:
    """Whether the version was shown, on the fine-tuning holdout, to rank leads better than the
    version in force, in words for a manager. `tone`: "danger" when the verdict is not safe to
    sign (worse, or within the noise), "ok" when it is, "neutral" when it was never measured
    against the version in force (written by hand, edited after tuning, measured against a
    version since replaced, or a report older than the verdict)."""
    report = model.report or {}
    if report.get("kind") != "tuning":
        return {
            "tone": "neutral",
            "level": "not_measured",
            "title": "Not measured against the version in force",
            "message": (
                "This version was written by hand: it was not measured against the active "
                "version on a holdout of leads with known outcomes, so nothing here says whether "
                "it ranks leads better or worse."
            ),
            "risk": "",
            "verdict": None,
        }
    if model.events.filter(action=ModelAction.EDITED).exists():
        return {
            "tone": "neutral",
            "level": "edited",
            "title": "Not measured against the version in force",
            "message": (
                "Its rules were edited after fine-tuning measured them, so the fine-tuning report "
                "describes other rules: this version was not measured against the active version "
                "on a holdout."
            ),
            "risk": "",
            "verdict": None,
        }
    verdict = report.get("verdict")
    measured = report.get("model", {})
    replaced = (
        "based_on" in measured
        and measured["based_on"] != (active.pk if active else None)
        and active is not None
    )
    since = ""
    if replaced:
        then = (
            f"against v{measured['based_on']}, then in force"
            if measured["based_on"]
            else "when no version was in force"
        )
        since = (
            f" That was measured {then}; {active.label}, in force now, has not been compared "
            "with it."
        )
    if not verdict:
        proposal_auc = (report.get("proposal") or {}).get("auc")
        active_auc = (report.get("active") or {}).get("auc")
        figures = (
            f"holdout AUC {proposal_auc:.3f} against {active_auc:.3f} for the active version"
            if proposal_auc is not None and active_auc is not None
            else "no comparison with the active version"
        )
        return {
            "tone": "neutral",
            "level": "no_verdict",
            "title": "No verdict on this proposal",
            "message": (
                f"This fine-tuning report is older than the verdict: {figures}, without an "
                "estimate of the noise, so it does not say whether the difference is real." + since
            ),
            "risk": "",
            "verdict": None,
        }
    if not verdict.get("safe"):
        return {
            "tone": "danger",
            "level": verdict.get("level", ""),
            "title": VERDICT_TITLES.get(verdict.get("level"), OTHER_TITLE),
            "message": verdict.get("message", "") + since,
            "risk": VERDICT_RISKS.get(verdict.get("level"), OTHER_RISK),
            "verdict": verdict,
        }
    return {
        "tone": "neutral" if replaced else "ok",
        "level": verdict.get("level", ""),
        "title": (
            "Not measured against the version in force"
            if replaced
            else "No version in force to compare with"
            if verdict.get("level") == "no_active"
            else "Measured on the fine-tuning holdout"
        ),
        "message": verdict.get("message", "") + since,
        "risk": "",
        "verdict": verdict,
    }


def scoring_model_signoff(*, model: ScoringModel, by: User) -> dict:
    """What a manager's approval of `model` would change, for the confirmation they read first:
    the rules added, removed and changed, the leads that change grade and become MQLs (the kept
    activation preview), the verdict, and whether this approval activates the version (the other
    side has approved) or is the first of the two."""
    active = ScoringModel.objects.filter(status=ModelStatus.ACTIVE).first()
    diff, diff_base = scoring_model_diff(model=model)
    preview, preview_stale = scoring_model_preview(model=model)
    empty = {"added": [], "removed": [], "changed": []}
    fit, engagement = diff.get("fit_rules") or empty, diff.get("engagement_rules") or empty
    rules = {
        what: [{"part": "fit", **r} for r in fit[what]]
        + [{"part": "engagement", **r} for r in engagement[what]]
        for what in ("added", "removed", "changed")
    }
    return {
        "model": model,
        "active": active,
        "diff": diff,
        "diff_base": diff_base,
        "rules": rules,
        "rule_changes": sum(len(v) for v in rules.values()),
        "verdict": scoring_model_verdict(model=model, active=active),
        "preview": preview,
        "preview_stale": preview_stale,
        **approval_state(model, by),
    }
