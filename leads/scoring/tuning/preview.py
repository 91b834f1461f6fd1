"""The draft editor's live preview: a draft spec evaluated on the holdout leads exactly as
fine-tuning evaluates a proposal (same leads, same split, same scoring at the moment that counts),
next to the active version on the same holdout. Reads only; nothing is written.

"Same holdout": a draft copied from a tuned version (or carrying a tuning report itself) uses
that report's outcome, seed and holdout share, so its figures compare with the report's; any
other draft uses won vs lost, 30% and seed 0, the defaults of fine-tuning.
"""

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from leads.scoring.calibration import Rate
from leads.scoring.compiled import scoring_model_active
from leads.scoring.models import ScoringModel
from leads.scoring.rules import GRADES, CompiledModel, ScoringError, compile_spec
from leads.scoring.tuning import data, evaluate, features, learn
from leads.scoring.tuning.services import DEFAULT_HOLDOUT, DEFAULT_SEED
from leads.scoring.tuning.touches import touchpoints

# leads_per_month counts the leads created in this many days before now
ARRIVAL_DAYS = 90


class PreviewError(ScoringError):
    """The preview cannot be computed (too few outcomes); the message says why."""


def holdout_of(model: ScoringModel) -> dict[str, Any]:
    """The outcome, holdout share and seed a draft is previewed with: those of the tuning report
    it carries or was copied from, else fine-tuning's defaults."""
    for source in (model, model.based_on):
        report = (source.report or {}) if source is not None else {}
        if report.get("kind") == "tuning" and report.get("outcome") in data.OUTCOMES:
            return {
                "outcome": report["outcome"],
                "holdout": float(report.get("holdout_share", DEFAULT_HOLDOUT)),
                "seed": int(report.get("seed", DEFAULT_SEED)),
                "from_report": source.label,
            }
    return {
        "outcome": data.OUTCOME_WON,
        "holdout": DEFAULT_HOLDOUT,
        "seed": DEFAULT_SEED,
        "from_report": None,
    }


def _percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _grade_row(row: dict, held: int, word: str) -> dict[str, Any]:
    share = row["leads"] / held if held else None
    rate = Rate(row["grade"], row["positives"], row["leads"], word)
    if not row["leads"]:
        text = "no holdout lead"
    elif rate.enough:
        text = f"{_percent(share)} of the holdout · {rate.text}"
    else:
        text = f"{_percent(share)} of the holdout · too few to say how many {word} (n = {rate.decided})"
    return {**row, "share": share, "text": text}


def _figures(
    report: dict, held: int, per_month: float | None, model: CompiledModel, word: str
) -> dict[str, Any]:
    mql = report["mql"]
    share = mql["share"] or 0.0
    caught = f"{mql['qualified']} ({_percent(mql['share'])})"
    if mql["qualified"]:
        caught += f", {_percent(mql['precision'])} of them {word}"
    return {
        "label": report["label"],
        "auc": report["auc"],
        "auc_fit_only": report["auc_fit_only"],
        "grades": [_grade_row(row, held, word) for row in report["grades"]],
        "mql": mql,
        "caught": caught,
        "mqls_per_month": round(share * per_month, 1) if per_month is not None else None,
        "thresholds": {"total": model.mql_total, "fit": model.mql_fit},
    }


def scoring_spec_preview(
    spec: dict, *, outcome: str, holdout: float, seed: int, now: datetime
) -> dict[str, Any]:
    """A validated draft spec on the holdout leads: AUC, the share of the holdout in each grade
    (with the share that reached the outcome), what the MQL definition catches, and the MQLs it
    would make in a month (the holdout's qualifying share times the leads that arrive in a
    month); the same for the active version. Raises PreviewError with too few outcomes."""
    if outcome not in data.OUTCOMES:
        raise PreviewError(f"Unknown outcome {outcome!r}.", field="outcome")
    labeled = data.labeled_leads(outcome)
    y = labeled.label.astype(np.int64)
    positives, negatives = labeled.counts()
    yes, no = data.OUTCOME_WORDS[outcome]
    too_few = labeled.too_few(outcome)
    if too_few:
        raise PreviewError(
            f"Too few outcomes to preview on: {too_few}; the preview needs at least "
            f"{data.MIN_OUTCOMES} of each, as fine-tuning does. Save the draft and compare it "
            "again when more leads are decided.",
            field="outcome",
        )
    _train, hold = learn.stratified_split(y, share=holdout, seed=seed)
    draft = compile_spec(spec, name="This draft")
    active = scoring_model_active()
    models = [draft, *([active] if active is not None else [])]
    touches = touchpoints(
        data.labeled_queryset(outcome),
        labeled.ids,
        kinds=set().union(*(m.kinds for m in models)),
        with_metadata=any(r.metadata for m in models for r in m.engagement_rules),
    )
    table = features.LeadTable(labeled.leads)
    y_hold = y[hold]
    reports = [
        evaluate.holdout_report(m, table, hold, y_hold, touches, labeled.cutoff) for m in models
    ]
    since = now - timedelta(days=ARRIVAL_DAYS)
    per_month = evaluate.leads_per_month(data.arrivals(since), days=ARRIVAL_DAYS)
    held = len(hold)
    draft_figures = _figures(reports[0], held, per_month, draft, yes)
    active_figures = _figures(reports[1], held, per_month, active, yes) if active else None
    return {
        "outcome": outcome,
        "outcome_words": {"positive": yes, "negative": no},
        "holdout_share": holdout,
        "seed": seed,
        "at": now.isoformat(),
        "leads": {
            "positives": positives,
            "negatives": negatives,
            "holdout": held,
            "holdout_positives": int(y_hold.sum()),
        },
        "leads_per_month": round(per_month, 1) if per_month is not None else None,
        "arrival_days": ARRIVAL_DAYS,
        "draft": draft_figures,
        "active": active_figures,
        "comparison": _comparison(reports, y_hold, seed=seed, active=active),
        "grades": GRADES,
    }


def _comparison(
    reports: list[dict], y: np.ndarray, *, seed: int, active: CompiledModel | None
) -> dict[str, Any] | None:
    """The draft against the active version on the same holdout leads: the AUC difference and
    its bootstrap noise (evaluate.verdict), in words."""
    if active is None:
        return None
    found = evaluate.verdict(
        reports[0]["scores"], reports[1]["scores"], y, seed=seed, active_label=active.label
    )
    if found["difference"] is None or found["proposal_auc"] is None or found["active_auc"] is None:
        return None
    numbers = (
        f"AUC {found['proposal_auc']:.3f} against {found['active_auc']:.3f} "
        f"({found['difference']:+.3f}, noise ±{found['noise']:.3f})"
    )
    level = found["level"]
    if level == evaluate.VERDICT_BETTER:
        message = f"This draft ranks the holdout leads better than {active.label}: {numbers}."
    elif level == evaluate.VERDICT_WITHIN_NOISE:
        message = (
            f"This draft is not clearly better than {active.label}: {numbers}, a difference "
            "within the noise of this holdout."
        )
    elif found["difference"] == 0:
        message = (
            f"This draft ranks the holdout leads exactly as {active.label} does: "
            f"AUC {found['proposal_auc']:.3f}."
        )
    else:
        message = f"This draft ranks the holdout leads worse than {active.label}: {numbers}."
    return {
        "level": level,
        "difference": found["difference"],
        "noise": found["noise"],
        "message": message,
    }
