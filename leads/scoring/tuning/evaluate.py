"""How well a scoring model version ranks leads whose outcome is known, scored exactly as the
scoring service scores them: fit by the version's compiled rules, engagement by the anchored decay
of `leads.scoring.engagement` at the moment that counts, MQL by the version's definition.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from leads.scoring.engagement import (
    Anchored,
    anchored_add,
    anchored_from_touchpoints,
    engagement_at,
)
from leads.scoring.rules import GRADES, CompiledModel
from leads.scoring.tuning import data
from leads.scoring.tuning.features import LeadTable, fit_scores
from leads.scoring.tuning.learn import auc, select
from leads.scoring.tuning.touches import Touch, Touchpoints

BANDS = 10


def _r(x: float | None, places: int = 4) -> float | None:
    return None if x is None else round(float(x), places)


def engagement_scores(
    model: CompiledModel,
    rows: Sequence[int],
    touches: Touchpoints | dict[int, list[Touch]],
    cutoffs: Sequence[datetime],
) -> np.ndarray:
    """Each lead's engagement at its cutoff, from its touchpoints up to then."""
    out = np.zeros(len(rows))
    if not model.kinds:
        return out
    compact = isinstance(touches, Touchpoints)
    for n, i in enumerate(rows):
        at = cutoffs[i]
        if compact:
            # only the model's kinds up to the cutoff become tuples: the others add nothing
            items = touches.until(i, at, kinds=model.kinds)
        else:
            items = [t for t in touches.get(i) or () if t[3] <= at]
        if not items:
            continue
        state = anchored_from_touchpoints(model, items, at=at)
        out[n] = engagement_at(model, state, at)
    return out


def peak_totals(
    model: CompiledModel,
    fit: np.ndarray,
    touches: Touchpoints | dict[int, list[Touch]],
    ends: Sequence[datetime],
) -> np.ndarray:
    """Each lead's highest total until `ends[i]`: the fit, and the total just after each of its
    touchpoints (engagement only decays in between). A lead crossed the MQL definition at some
    event exactly when this peak meets it (the fit does not change with time)."""
    peak = fit.astype(float).copy()
    if not model.kinds:
        return peak
    if isinstance(touches, Touchpoints):
        # one lead's tuples at a time, only of the model's kinds and up to its end
        leads = ((i, touches.until(i, ends[i], kinds=model.kinds)) for i in touches)
    else:
        leads = touches.items()
    for i, items in leads:
        state = Anchored()
        for kind, campaign_id, metadata, at in items:
            if at > ends[i]:
                break
            points = model.touchpoint_points(kind, campaign_id, metadata)
            if points:
                state = anchored_add(model, state, points=points, occurred_at=at, now=at)
                peak[i] = max(peak[i], fit[i] + engagement_at(model, state, at))
    return peak


def lift_bands(scores: np.ndarray, y: np.ndarray, bands: int = BANDS) -> list[dict]:
    """Leads ranked by score, best first, cut into `bands` bands of about equal size. Leads with
    the same score always share a band (a model that cannot tell them apart gets no credit for an
    arbitrary order), so a band may be larger, smaller or empty."""
    n = len(scores)
    base = float(y.mean()) if n else 0.0
    order = np.argsort(-scores, kind="mergesort")
    ordered = scores[order]
    bounds = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    band_of = np.empty(n, dtype=np.int64)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        middle = (start + stop - 1) / 2.0
        band_of[order[start:stop]] = min(int(middle * bands / n), bands - 1)
    rows, captured = [], 0
    total_positive = int(y.sum())
    for b in range(bands):
        inside = band_of == b
        count, positive = int(inside.sum()), int(y[inside].sum())
        captured += positive
        rate = positive / count if count else None
        rows.append(
            {
                "band": b + 1,
                "leads": count,
                "positives": positive,
                "rate": _r(rate),
                "lift": _r(rate / base if rate is not None and base else None, 2),
                "min_score": _r(scores[inside].min(), 1) if count else None,
                "max_score": _r(scores[inside].max(), 1) if count else None,
                "captured": _r(captured / total_positive if total_positive else None),
            }
        )
    return rows


def grade_table(grades: np.ndarray, y: np.ndarray) -> list[dict]:
    base = float(y.mean()) if len(y) else 0.0
    rows = []
    for grade in GRADES:
        inside = grades == grade
        count, positive = int(inside.sum()), int(y[inside].sum())
        rate = positive / count if count else None
        rows.append(
            {
                "grade": grade,
                "leads": count,
                "positives": positive,
                "rate": _r(rate),
                "lift": _r(rate / base if rate is not None and base else None, 2),
            }
        )
    return rows


def holdout_report(
    model: CompiledModel,
    table: LeadTable,
    rows: np.ndarray,
    y: np.ndarray,
    touches: dict[int, list[Touch]],
    cutoffs: Sequence[datetime],
) -> dict:
    """AUC, lift by band, grades and the MQL definition of one version on the holdout leads."""
    fit = fit_scores(model, table)[rows]
    total = fit + engagement_scores(model, rows, touches, cutoffs)
    grades = np.array([model.grade(int(f)) for f in fit])
    qualified = np.array(
        [model.qualifies(fit=f, total=t) for f, t in zip(fit, total, strict=True)], dtype=bool
    )
    hits = int(y[qualified].sum())
    return {
        "id": model.id,
        "label": model.label,
        "name": model.name,
        "auc": _r(auc(total, y)),
        "auc_fit_only": _r(auc(fit, y)),
        "bands": lift_bands(total, y),
        "grades": grade_table(grades, y),
        "mql": {
            "total": model.mql_total,
            "fit": model.mql_fit,
            "qualified": int(qualified.sum()),
            "share": _r(qualified.mean() if len(qualified) else None),
            "positives": hits,
            "precision": _r(hits / qualified.sum() if qualified.sum() else None),
            "recall": _r(hits / y.sum() if y.sum() else None),
        },
        "scores": total,
    }


# a proposal must beat the active version by more than this share of the bootstrap spread of the
# AUC difference to count as better; below it the two are "within noise"
VERDICT_BOOTSTRAPS = 200
VERDICT_BETTER = "better"
VERDICT_WITHIN_NOISE = "within_noise"
VERDICT_WORSE = "worse"
VERDICT_NO_ACTIVE = "no_active"
# the verdicts under which a proposal is safe to sign (the weekly job proposes nothing else)
SAFE_VERDICTS = (VERDICT_BETTER, VERDICT_NO_ACTIVE)


def verdict(
    proposal: np.ndarray,
    active: np.ndarray | None,
    y: np.ndarray,
    *,
    seed: int,
    active_label: str = "",
    bootstraps: int = VERDICT_BOOTSTRAPS,
) -> dict:
    """Is the proposal better than the active version on the same holdout leads? The difference
    of the two AUCs, and its noise: the half-width of the middle 95% of the difference over
    paired bootstrap resamples of the holdout (the same resampled leads score both versions).
    "better" only when the difference is positive and larger than that noise."""
    proposal_auc = auc(proposal, y)
    if active is None:
        return {
            "level": VERDICT_NO_ACTIVE,
            "safe": True,
            "proposal_auc": _r(proposal_auc),
            "active_auc": None,
            "difference": None,
            "noise": None,
            "message": "There is no active version to compare with.",
        }
    active_auc = auc(active, y)
    difference = (proposal_auc or 0.0) - (active_auc or 0.0)
    rng = np.random.default_rng(seed)
    spread = []
    for _ in range(bootstraps):
        rows = rng.integers(0, len(y), len(y))
        a, b = auc(proposal[rows], y[rows]), auc(active[rows], y[rows])
        if a is not None and b is not None:
            spread.append(a - b)
    low, high = np.quantile(spread, [0.025, 0.975]) if spread else (difference, difference)
    noise = float(high - low) / 2.0
    name = f"the active version {active_label}".strip()
    if difference <= 0:
        level = VERDICT_WORSE
        message = (
            f"This proposal ranks the holdout leads worse than {name}: AUC "
            f"{proposal_auc:.3f} against {active_auc:.3f}. Signing it would make scoring worse."
        )
    elif difference <= noise:
        level = VERDICT_WITHIN_NOISE
        message = (
            f"This proposal is not clearly better than {name}: AUC {proposal_auc:.3f} against "
            f"{active_auc:.3f}, a difference of {difference:+.3f} within the noise of this "
            f"holdout (±{noise:.3f})."
        )
    else:
        level = VERDICT_BETTER
        message = (
            f"This proposal ranks the holdout leads better than {name}: AUC {proposal_auc:.3f} "
            f"against {active_auc:.3f} ({difference:+.3f}, noise ±{noise:.3f})."
        )
    return {
        "level": level,
        "safe": level in SAFE_VERDICTS,
        "proposal_auc": _r(proposal_auc),
        "active_auc": _r(active_auc),
        "difference": _r(difference),
        "noise": _r(noise),
        "message": message,
    }


DAYS_PER_MONTH = 365.25 / 12


def leads_per_month(arrived: int, *, days: int = 90) -> float | None:
    """How many leads arrive in a month, from the `arrived` leads created in the last `days`
    days. None when none arrived then (an import of old leads all created at once says nothing
    of a month)."""
    if not arrived:
        return None
    return arrived / (days / DAYS_PER_MONTH)


# the newest share of the outcomes the out-of-time check measures on
OUT_OF_TIME_SHARE = 0.3


def out_of_time(
    X,
    y: np.ndarray,
    cutoffs: list[datetime],
    *,
    sample: np.ndarray,
    all_cutoffs: list[datetime],
    non_negative: np.ndarray,
    counted: np.ndarray,
    max_rules: int,
    seed: int,
    active,
    table: LeadTable,
    touches,
) -> dict:
    """The same learning on the older outcomes only, measured on the newer ones (the newest
    OUT_OF_TIME_SHARE by the moment each lead counted), beside the active version on those same
    newer leads. Says why not when the outcomes do not spread over time (leads imported at once
    share one moment) or one side has too few of either outcome."""
    times = np.array([c.timestamp() for c in cutoffs])
    n = len(y)
    boundary = float(np.quantile(times, 1 - OUT_OF_TIME_SHARE)) if n else 0.0
    older, newer = times < boundary, times >= boundary
    counts = [int(np.sum(y[part] == label)) for part in (older, newer) for label in (0, 1)]
    if n == 0 or times.max() - times.min() < 86400 or older.sum() < n * 0.5:
        return {
            "possible": False,
            "reason": "The outcomes do not spread over time (the leads were most likely imported "
            "at once and share one moment), so the model cannot be trained on older outcomes and "
            "measured on newer ones. Only the random holdout is shown.",
        }
    if min(counts) < data.MIN_OUTCOMES // 2:
        return {
            "possible": False,
            "reason": f"Too few outcomes on one side of {datetime.fromtimestamp(boundary, tz=UTC):%Y-%m-%d} "
            f"to measure (each side needs {data.MIN_OUTCOMES // 2} of either outcome). Only the "
            "random holdout is shown.",
        }
    rows_old, rows_new = np.flatnonzero(older), np.flatnonzero(newer)
    selection = select(
        X[rows_old],
        y[rows_old],
        non_negative=non_negative,
        counted=counted,
        max_rules=max_rules,
        seed=seed,
    )
    learned = auc(selection.fit.decision(X[rows_new]), y[rows_new])
    active_auc = None
    if active is not None:
        active_auc = holdout_report(
            active, table, sample[rows_new], y[rows_new], touches, all_cutoffs
        )["auc"]
    return {
        "possible": True,
        "since": datetime.fromtimestamp(boundary, tz=UTC).isoformat(),
        "older": int(older.sum()),
        "newer": int(newer.sum()),
        "newer_positives": int(y[rows_new].sum()),
        "auc": None if learned is None else round(learned, 4),
        "active_auc": active_auc,
    }
