"""Fine-tuning: learn a scoring model version from outcomes and propose it for sign-off.

Called by the `tune_scoring` command, the weekly Celery job `leads.scoring_tune` and the tuning
page (through that job). The design is described in `leads/scoring/tuning/__init__.py`.
"""

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from scipy import sparse

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from leads.models import Lead
from leads.scoring.compiled import compiled_model
from leads.scoring.models import ModelOrigin, ModelStatus, ScoringModel
from leads.scoring.rules import (
    ScoringError,
    compile_spec,
    spec_diff,
    spec_of,
    validate_spec,
)
from leads.scoring.services import scoring_model_create, scoring_model_propose
from leads.scoring.tuning import data, evaluate, features, learn, shapes
from leads.scoring.tuning.status import (
    tuning_lock,
    tuning_status_record,
    tuning_unlock,
)

logger = logging.getLogger(__name__)

TUNING_SYSTEM = "tuning"
MIN_OUTCOMES = 50
DEFAULT_HOLDOUT = 0.3
DEFAULT_SEED = 0
DEFAULT_BINS = 20
DEFAULT_MAX_RULES = 25
# the most leads the selection learns from (a stratified sample beyond): plenty for 25 rules, and
# it bounds the memory of the design matrix at a million leads
LEARNING_SAMPLE = 120_000
# the newest share of the outcomes the out-of-time check measures on
OUT_OF_TIME_SHARE = 0.3
# a precision goal counts only at a threshold where at least this many training leads qualify
MIN_QUALIFIED = 20
BACKTEST_DAYS = 90
# a candidate rule needs this many training leads on each side (matching and not matching)
MIN_SUPPORT_ROWS = 30
MIN_SUPPORT_SHARE = 0.001
# points between the 5% least and the 5% most promising training leads
SCORE_SPAN = 100
MAX_POINTS_PER_LOGIT = 1000.0
# the fit floor of the MQL definition: only this share of the leads that converted fell below it
FIT_FLOOR_QUANTILE = 0.05
# grade A from the 75th percentile of fit, B from the median, C from the 25th
GRADE_QUANTILES = (0.75, 0.5, 0.25)
# the backtest's leads set the MQL threshold when there are at least this many of them
MIN_POPULATION = 100
DEFAULT_HALF_LIFE_DAYS = 30.0


class TuningError(ScoringError):
    """Fine-tuning cannot propose a version; the message says why. Nothing was created."""


@dataclass
class TuningResult:
    """What a run came to. `status` is "proposed" (then `model` is the new proposed version) or
    "unchanged" (the learned version equals the active one or a pending proposal)."""

    status: str
    message: str
    spec: dict
    report: dict
    model: ScoringModel | None = None
    # for the benchmark: the leads learned from, and the split
    lead_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    train: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    holdout: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    # the proposal's total score of every holdout lead, as the scoring service computes it
    holdout_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def as_json(self) -> dict:
        return {
            "status": self.status,
            "message": self.message,
            "version": (
                {"id": self.model.pk, "label": self.model.label, "status": self.model.status}
                if self.model
                else None
            ),
            "report": self.report,
        }


def _check_options(outcome: str, holdout: float, seed: int, bins: int) -> None:
    if outcome not in data.OUTCOMES:
        raise TuningError(
            f"Unknown outcome {outcome!r}: use one of {', '.join(data.OUTCOMES)}.", field="outcome"
        )
    if not 0.05 <= holdout <= 0.5:
        raise TuningError("The holdout must be between 0.05 and 0.5 of the leads.", field="holdout")
    if seed < 0:
        raise TuningError("The seed must be a whole number from 0.", field="seed")
    if not 2 <= bins <= 50:
        raise TuningError("Numbers are cut into between 2 and 50 bins.", field="bins")


def _check_goal(max_rules: int, mqls_per_month: int | None, min_precision: float | None) -> None:
    if not 1 <= max_rules <= 200:
        raise TuningError("The budget of fit rules must be between 1 and 200.", field="max_rules")
    if mqls_per_month is not None and min_precision is not None:
        raise TuningError(
            "State one goal: about N MQLs a month, or a precision of at least P%, not both.",
            field="mqls_per_month",
        )
    if mqls_per_month is not None and mqls_per_month < 1:
        raise TuningError("The MQLs a month must be a whole number from 1.", field="mqls_per_month")
    if min_precision is not None and not 0 < min_precision < 1:
        raise TuningError(
            "The precision must be between 0% and 100% (0 and 1 exclusive).", field="min_precision"
        )


def _precision_total(
    fit: np.ndarray, total: np.ndarray, y: np.ndarray, *, fit_floor: int, precision: float
) -> int:
    """The lowest whole-number total at which, with the fit floor, at least `precision` of the
    qualifying leads are positive (and at least MIN_QUALIFIED of them qualify)."""
    eligible = fit >= fit_floor
    candidates = np.unique(np.ceil(total[eligible] - 1e-9))
    best = None
    for threshold in candidates:
        qualified = eligible & (total >= threshold)
        if qualified.sum() < MIN_QUALIFIED:
            break
        reached = float(y[qualified].mean())
        best = reached if best is None else max(best, reached)
        if reached >= precision:
            return int(threshold)
    raise TuningError(
        f"No MQL threshold reaches a precision of {precision:.0%} on the training leads"
        + (f" (the best is {best:.0%})" if best is not None else "")
        + ": ask for a lower precision, or for a number of MQLs a month. Nothing was created.",
        field="min_precision",
    )


def _out_of_time(
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
    table: features.LeadTable,
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
    if min(counts) < MIN_OUTCOMES // 2:
        return {
            "possible": False,
            "reason": f"Too few outcomes on one side of {datetime.fromtimestamp(boundary, tz=UTC):%Y-%m-%d} "
            f"to measure (each side needs {MIN_OUTCOMES // 2} of either outcome). Only the "
            "random holdout is shown.",
        }
    rows_old, rows_new = np.flatnonzero(older), np.flatnonzero(newer)
    selection = learn.select(
        X[rows_old],
        y[rows_old],
        non_negative=non_negative,
        counted=counted,
        max_rules=max_rules,
        seed=seed,
    )
    learned = learn.auc(selection.fit.decision(X[rows_new]), y[rows_new])
    active_auc = None
    if active is not None:
        active_auc = evaluate.holdout_report(
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


def _exclusions(names: Iterable[str]) -> list[str]:
    """The attributes named for this run, and those the deployment always leaves out
    (settings.SCORING_TUNING_EXCLUDE_ATTRIBUTES, optional)."""
    always = getattr(settings, "SCORING_TUNING_EXCLUDE_ATTRIBUTES", ()) or ()
    return sorted({n.strip() for n in (*names, *always) if n and n.strip()})


def _quantile_floor(values: np.ndarray, q: float) -> int:
    return int(math.floor(float(np.quantile(values, q)))) if len(values) else 0


def _mql_total(fit: np.ndarray, peak: np.ndarray, *, fit_floor: int, rate: float) -> int:
    """The whole-number total threshold whose share of qualified leads is closest to `rate`
    (on a tie the higher threshold: fewer, better MQLs)."""
    eligible = fit >= fit_floor
    candidates = np.unique(np.ceil(peak[eligible] - 1e-9))
    if not len(candidates):
        return int(math.ceil(float(peak.max()))) + 1 if len(peak) else 0
    ordered = np.sort(peak[eligible])
    # leads at or above each candidate threshold
    reach = len(ordered) - np.searchsorted(ordered, candidates - 1e-9, side="left")
    shares = reach / len(peak)
    gaps = np.abs(shares - rate)
    best = np.flatnonzero(gaps <= gaps.min() + 1e-12)[-1]
    return int(candidates[best])


def _spec(
    *,
    half_life: float,
    fit_rules: list[dict],
    engagement: list[dict],
    thresholds: dict,
) -> dict:
    caps = {r["group"]: r.pop("cap") for r in engagement}
    return validate_spec(
        {
            "half_life_days": half_life,
            **thresholds,
            "group_caps": caps,
            "fit_rules": fit_rules,
            "engagement_rules": engagement,
        }
    )


def _learning_sample(y: np.ndarray, *, seed: int) -> np.ndarray:
    """The rows the selection learns from: all of them, or a stratified sample of
    LEARNING_SAMPLE (fixed by the seed) when there are more."""
    if len(y) <= LEARNING_SAMPLE:
        return np.arange(len(y))
    return learn.stratified_split(y, share=LEARNING_SAMPLE / len(y), seed=seed + 1)[1]


def _blocks_with_columns(
    blocks: list[shapes.Block],
    table: features.LeadTable,
    in_train: np.ndarray,
    min_support: int,
    sample: np.ndarray,
) -> tuple[list[shapes.Block], list[np.ndarray]]:
    """Each block's columns (the positions in `sample`, the rows learned from, where each is 1),
    without the columns too rare or too common among the training leads; the blocks left, each
    knowing where its columns start."""
    trained = int(in_train.sum())
    member = np.zeros(len(in_train), dtype=bool)
    member[sample] = True
    position = np.cumsum(member) - 1
    kept_blocks, columns = [], []
    for block in blocks:
        numbers = shapes.numbers_of(table, block.field) if block.kind == shapes.NUMBER else None
        rows = shapes.block_columns(block, table, numbers)
        keep = [
            k
            for k, r in enumerate(rows)
            if min_support <= int(np.count_nonzero(in_train[r])) <= trained - min_support
        ]
        if not keep:
            continue
        if block.kind == shapes.FLAG:
            block.rules = [block.rules[k] for k in keep]
        else:
            block.cuts = [block.cuts[k] for k in keep]
        block.start = len(columns)
        columns += [position[rows[k][member[rows[k]]]] for k in keep]
        kept_blocks.append(block)
    return kept_blocks, columns


def _timer() -> Callable[..., dict[str, float]]:
    started = time.perf_counter()
    laps: dict[str, float] = {}
    last = [started]

    def lap(name: str | None = None) -> dict[str, float]:
        now = time.perf_counter()
        if name:
            laps[name] = round(now - last[0], 3)
        last[0] = now
        laps["total"] = round(now - started, 3)
        return laps

    return lap


def scoring_tune(
    *,
    outcome: str = data.OUTCOME_WON,
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = DEFAULT_SEED,
    exclude_attributes: Iterable[str] = (),
    include_attributes: Iterable[str] = (),
    bins: int = DEFAULT_BINS,
    max_rules: int = DEFAULT_MAX_RULES,
    mqls_per_month: int | None = None,
    min_precision: float | None = None,
    by: User | None = None,
    system: str = TUNING_SYSTEM,
    now: datetime | None = None,
    propose: bool = True,
    propose_unsafe: bool = True,
) -> TuningResult:
    """Learn a version from the leads whose outcome is known and, unless it equals the active
    version (or a pending tuned proposal), create it and propose it for both managers' sign-off.
    Never activates anything. `propose=False` learns and reports without writing (benchmarks).
    Columns found unfit to learn from (identifiers, counters, constants, leaks) are left out unless
    named in `include_attributes`. At most `max_rules` fit rules. The MQL threshold comes from a
    goal: about `mqls_per_month` MQLs a month, or a precision of at least `min_precision` (0-1),
    or else as many MQLs as were made lately. `propose_unsafe=False` (the weekly job) proposes
    nothing unless the proposal is clearly better than the active version on the holdout."""
    if by is not None:
        require(by, Action.SCORING_PROPOSE)
    _check_options(outcome, holdout, seed, bins)
    _check_goal(max_rules, mqls_per_month, min_precision)
    now = now or timezone.now()
    lap = _timer()
    exclude = _exclusions(exclude_attributes)
    include = sorted({n.strip() for n in include_attributes if n and n.strip()})

    active_row = ScoringModel.objects.filter(status=ModelStatus.ACTIVE).first()
    active = compiled_model(active_row) if active_row else None
    half_life = active.half_life_days if active else DEFAULT_HALF_LIFE_DAYS

    # --- the leads with a known outcome, and the split
    labeled = data.labeled_leads(outcome)
    y = labeled.label.astype(np.int64)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    yes, no = data.OUTCOME_WORDS[outcome]
    if positives < MIN_OUTCOMES or negatives < MIN_OUTCOMES:
        raise TuningError(
            f"Too few outcomes to learn from: {positives} leads {yes} and {negatives} {no}; "
            f"fine-tuning needs at least {MIN_OUTCOMES} of each. Nothing was created.",
            field="outcome",
        )
    train, hold = learn.stratified_split(y, share=holdout, seed=seed)
    active_kinds = set(active.kinds) if active else set()
    with_metadata = bool(active and any(r.metadata for r in active.engagement_rules))
    touches = data.touchpoints(
        data.labeled_queryset(outcome),
        labeled.ids,
        kinds=set(features.MARKETING_KINDS) | active_kinds,
        with_metadata=with_metadata,
    )
    lap("read")

    # --- candidate blocks and the design matrix (sparse: leads x columns)
    table = features.LeadTable(labeled.leads)
    min_support = max(MIN_SUPPORT_ROWS, math.ceil(MIN_SUPPORT_SHARE * len(train)))
    candidates = features.candidate_rules(
        table,
        train,
        bins=bins,
        min_support=min_support,
        exclude=exclude,
        y=y,
        lead_ids=labeled.ids,
        include=include,
    )
    n = len(y)
    in_train = np.zeros(n, dtype=bool)
    in_train[train] = True
    # the selection learns from a stratified sample when there are very many outcomes, so that
    # its matrix stays small; the proposal is still measured on every holdout lead
    sample = _learning_sample(y, seed=seed)
    blocks, columns = _blocks_with_columns(candidates.blocks, table, in_train, min_support, sample)

    kinds = list(features.MARKETING_KINDS)
    decayed = data.decayed_counts(touches, labeled.cutoff, kinds, half_life_days=half_life)
    eng_columns, clips = features.engagement_candidates(
        decayed, train, kinds, min_support=min_support
    )
    if not columns and not eng_columns:
        raise TuningError(
            "No field, attribute or touchpoint kind is common enough among these leads to become "
            f"a rule (each needs at least {min_support} leads). Nothing was created."
        )
    p_fit = len(columns)
    # engagement columns: the decayed count up to its clip, as a share of the clip
    X_eng = np.minimum(decayed[sample][:, eng_columns], np.array(clips)) / np.array(clips)
    X = sparse.hstack([shapes.design(columns, len(sample)), sparse.csc_matrix(X_eng)], format="csr")
    del decayed
    y_sample = y[sample]
    learn_rows = np.flatnonzero(in_train[sample])
    held_rows = np.flatnonzero(~in_train[sample])
    non_negative = np.r_[
        np.array([b.non_negative for b in blocks for _ in range(b.width)], dtype=bool),
        np.ones(len(eng_columns), dtype=bool),
    ]
    counted = np.r_[np.ones(p_fit, dtype=bool), np.zeros(len(eng_columns), dtype=bool)]
    lap("candidates")

    # --- the sparse fit, within the budget of rules
    selection = learn.select(
        X[learn_rows],
        y_sample[learn_rows],
        non_negative=non_negative,
        counted=counted,
        max_rules=max_rules,
        seed=seed,
    )
    model_fit = selection.fit
    unrounded_auc = learn.auc(model_fit.decision(X[held_rows]), y_sample[held_rows])
    lap("fit")

    # --- points: one scale for every rule, so that SCORE_SPAN points separate the 5% least from
    # the 5% most promising training leads
    linear = np.asarray(X[learn_rows] @ model_fit.coef).ravel()
    span = float(np.quantile(linear, 0.95) - np.quantile(linear, 0.05))
    if span <= 1e-9:
        raise TuningError(
            "The outcomes show no pattern the candidate rules can express: every lead would get "
            "the same score. Nothing was created."
        )
    per_logit = min(SCORE_SPAN / span, MAX_POINTS_PER_LOGIT)
    scored_fit_rules = []
    for block in blocks:
        weights = model_fit.coef[block.start : block.start + block.width]
        scored_fit_rules += shapes.block_rules(block, weights, per_logit)
    features.name_rules(scored_fit_rules)
    engagement_rules = []
    for k, column in enumerate(eng_columns):
        cap = int(round(per_logit * model_fit.coef[p_fit + k]))
        points = int(round(cap / clips[k]))
        if points > 0:
            kind = kinds[column]
            engagement_rules.append(
                {
                    "key": f"t_eng_{kind}",
                    "kind": kind,
                    "points": points,
                    "group": f"t_{kind}",
                    "cap": max(points, cap),
                }
            )
    if not scored_fit_rules and not engagement_rules:
        raise TuningError(
            "Every learned rule rounds to 0 points: the outcomes show no usable pattern. "
            "Nothing was created."
        )
    placeholder = {"mql_total": 0, "mql_fit": 0, "grade_a": 0, "grade_b": 0, "grade_c": 0}
    draft_spec = _spec(
        half_life=half_life,
        fit_rules=[dict(r) for r in scored_fit_rules],
        engagement=[dict(r) for r in engagement_rules],
        thresholds=placeholder,
    )
    draft = compile_spec(draft_spec)

    # --- the MQL definition and the grades, from the recent leads as the proposal scores them
    since = now - timedelta(days=BACKTEST_DAYS)
    recent = data.recent_leads(outcome, since=since, now=now)
    recent_table = features.LeadTable(recent.leads)
    recent_touches = data.touchpoints(
        Lead.objects.filter(created_at__gte=since),
        recent.ids,
        kinds=set(draft.kinds) | active_kinds,
        with_metadata=with_metadata,
    )
    recent_fit = features.fit_scores(draft, recent_table)
    recent_peak = evaluate.peak_totals(draft, recent_fit, recent_touches, recent.cutoff)
    train_fit = features.fit_scores(draft, table)[train]
    # a negative fit floor is never proposed: 0 lets every lead through on fit
    fit_floor = max(0, _quantile_floor(train_fit[y[train] == 1], FIT_FLOOR_QUANTILE))
    monthly = evaluate.leads_per_month(recent.created_at, now=now)
    if len(recent) >= MIN_POPULATION:
        population_fit, population_peak = recent_fit, recent_peak
        population = f"the {len(recent)} leads created in the last {BACKTEST_DAYS} days"
    else:
        train_total = train_fit + evaluate.engagement_scores(draft, train, touches, labeled.cutoff)
        population_fit, population_peak = train_fit, train_total
        population = f"the {len(train)} training leads"
    if min_precision is not None:
        train_total = train_fit + evaluate.engagement_scores(draft, train, touches, labeled.cutoff)
        mql_total = _precision_total(
            train_fit, train_total, y[train], fit_floor=fit_floor, precision=min_precision
        )
        rate = None
        goal_rule = (
            f"the lowest total at which at least {min_precision:.0%} of the training leads that "
            f"qualify were {yes}"
        )
    else:
        if mqls_per_month is not None:
            if monthly is None:
                raise TuningError(
                    f"No lead arrived in the last {BACKTEST_DAYS} days, so “about "
                    f"{mqls_per_month} MQLs a month” cannot be turned into a threshold; state "
                    "the precision you want instead. Nothing was created.",
                    field="mqls_per_month",
                )
            rate = min(1.0, mqls_per_month / monthly)
            rate_rule = (
                f"about {mqls_per_month} MQLs a month, of the {monthly:,.0f} leads that arrive "
                "in a month"
            )
        elif len(recent) >= MIN_POPULATION and recent.was_mql.any():
            rate = float(recent.was_mql.mean())
            rate_rule = (
                f"as many MQLs as were made: the share of the {len(recent)} leads created in the "
                f"last {BACKTEST_DAYS} days that became MQLs"
            )
        else:
            rate = float(y[train].mean())
            rate_rule = (
                f"the share of training leads {yes} (no MQL history in the last {BACKTEST_DAYS} "
                "days to match)"
            )
        mql_total = _mql_total(population_fit, population_peak, fit_floor=fit_floor, rate=rate)
        goal_rule = f"the total that makes {rate_rule} ({rate:.1%}), among {population}"
    qualifying = (population_fit >= fit_floor) & (population_peak >= mql_total)
    share = float(qualifying.mean()) if len(qualifying) else 0.0
    grade_a, grade_b, grade_c = (_quantile_floor(population_fit, q) for q in GRADE_QUANTILES)
    thresholds = {
        "mql_total": mql_total,
        "mql_fit": fit_floor,
        "grade_a": grade_a,
        "grade_b": grade_b,
        "grade_c": grade_c,
    }
    spec = _spec(
        half_life=half_life,
        fit_rules=scored_fit_rules,
        engagement=engagement_rules,
        thresholds=thresholds,
    )
    proposal = compile_spec(spec, name="Proposal")
    lap("points")

    # --- the report: holdout AUC and lift of the active version and the proposal, and backtest
    y_hold = y[hold]
    proposal_report = evaluate.holdout_report(
        proposal, table, hold, y_hold, touches, labeled.cutoff
    )
    proposal_scores = proposal_report.pop("scores")
    active_report, active_scores = None, None
    if active:
        active_report = evaluate.holdout_report(
            active, table, hold, y_hold, touches, labeled.cutoff
        )
        active_scores = active_report.pop("scores")
    verdict = evaluate.verdict(
        proposal_scores,
        active_scores,
        y_hold,
        seed=seed,
        active_label=active_row.label if active_row else "",
    )
    out_of_time = _out_of_time(
        X,
        y_sample,
        [labeled.cutoff[i] for i in sample],
        sample=sample,
        all_cutoffs=labeled.cutoff,
        non_negative=non_negative,
        counted=counted,
        max_rules=max_rules,
        seed=seed,
        active=active,
        table=table,
        touches=touches,
    )
    lap("report")

    report = {
        "kind": "tuning",
        "at": now.isoformat(),
        "outcome": outcome,
        "outcome_words": {"positive": yes, "negative": no},
        "seed": seed,
        "holdout_share": holdout,
        "bins": bins,
        "excluded_attributes": sorted(
            set(exclude)
            | {e.name for e in candidates.excluded if e.field.startswith(features.ATTRIBUTE_PREFIX)}
        ),
        "excluded_columns": [e.as_json() for e in candidates.excluded],
        "included_columns": [e.as_json() for e in candidates.included],
        "included_attributes": include,
        "leads": {
            "positives": positives,
            "negatives": negatives,
            "train": len(train),
            "holdout": len(hold),
            "holdout_positives": int(y_hold.sum()),
        },
        "candidates": {
            "fields": candidates.fields,
            "columns": p_fit,
            "blocks": [b.as_json() for b in blocks],
            "engagement_kinds": [kinds[c] for c in eng_columns],
            "min_support": min_support,
        },
        "model": {
            "method": "forward selection by cross-validated log-loss, refitted with "
            "scikit-learn's LogisticRegression; monotone numbers",
            "max_rules": max_rules,
            "steps": selection.steps,
            # the fitted weights before they are rounded to whole points
            "holdout_auc_unrounded": round(unrounded_auc or 0.0, 4),
            "cross_validation": selection.table,
            "points_per_logit": round(per_logit, 4),
            "intercept": round(model_fit.intercept, 4),
            "fit_rules": len(spec["fit_rules"]),
            "engagement_rules": len(spec["engagement_rules"]),
            "half_life_days": half_life,
            "based_on": active_row.pk if active_row else None,
        },
        "thresholds": {
            **thresholds,
            "target_mql_rate": None if rate is None else round(rate, 4),
            "goal": {"mqls_per_month": mqls_per_month, "min_precision": min_precision},
            "leads_per_month": None if monthly is None else round(monthly, 1),
            "qualifying_share": round(share, 4),
            "expected_mqls_per_month": None if monthly is None else round(share * monthly, 1),
            "rules": {
                "mql_fit": f"fit score below which only {FIT_FLOOR_QUANTILE:.0%} of the "
                f"training leads {yes} fell (never below 0)",
                "mql_total": f"{goal_rule}, with the fit floor",
                "grades": "A from the 75th percentile of fit, B from the median, C from the "
                f"25th, among {population}",
            },
        },
        "proposal": proposal_report,
        "active": active_report,
        "verdict": verdict,
        "out_of_time": out_of_time,
    }
    active_auc = active_report["auc"] if active_report else None
    summary = (
        f"Learned from {positives} leads {yes} and {negatives} {no}; holdout AUC "
        f"{proposal_report['auc']:.3f}"
        + (f" (active {active_row.label}: {active_auc:.3f})" if active_auc is not None else "")
        + f"; {len(spec['fit_rules'])} fit rules"
        + (
            f"; about {share * monthly:,.0f} MQLs a month"
            if monthly is not None
            else f"; {share:.1%} of the leads would qualify"
        )
        + (
            f", precision {proposal_report['mql']['precision']:.0%} on the holdout."
            if proposal_report["mql"]["precision"] is not None
            else "."
        )
    )
    report["summary"] = summary
    result = TuningResult(
        status="unchanged",
        message="",
        spec=spec,
        report=report,
        lead_ids=labeled.ids,
        train=train,
        holdout=hold,
        labels=labeled.label,
        holdout_scores=proposal_scores,
    )
    if not propose:
        result.status, result.message = "not_proposed", summary
        report["timings"] = lap()
        return result
    if not verdict["safe"] and not propose_unsafe:
        result.status = "not_proposed"
        result.message = (
            f"{verdict['message']} Nothing was proposed: this run proposes only a version that is "
            "clearly better than the active one."
        )
        report["timings"] = lap()
        return result

    with transaction.atomic():
        # the lock serialises two runs finishing at once: the second sees the first's proposal
        current = ScoringModel.objects.select_for_update().filter(status=ModelStatus.ACTIVE)
        current = current.first()
        if current and spec_diff(spec_of(current), spec)["summary"] == "no changes":
            result.message = (
                f"The tuned model is identical to the active version {current.label}; "
                "nothing was created."
            )
            report["timings"] = lap("propose")
            return result
        for pending in ScoringModel.objects.filter(
            status=ModelStatus.PROPOSED, origin=ModelOrigin.TUNING
        ):
            if spec_diff(spec_of(pending), spec)["summary"] == "no changes":
                result.message = (
                    f"The tuned model is identical to {pending.label}, already proposed and "
                    "waiting for approval; nothing was created."
                )
                report["timings"] = lap("propose")
                return result
        report["timings"] = lap("propose")
        model = scoring_model_create(
            name=f"Tuned on {outcome} outcomes, {timezone.localtime(now):%Y-%m-%d}",
            spec=spec,
            by=by,
            system=system,
            description=summary,
            based_on=current,
            origin=ModelOrigin.TUNING,
            report=report,
        )
        model = scoring_model_propose(model=model, by=by, system=system, note=summary)
    result.status, result.model = "proposed", model
    result.message = (
        f"Proposed {model.label}: {summary} Both managers must approve it before it is used."
    )
    return result


def scoring_tune_recorded(**options) -> TuningResult:
    """scoring_tune, with its state kept for the tuning page; one run at a time."""
    by = options.get("by")
    who = str(by) if by else options.get("system", TUNING_SYSTEM)
    if not tuning_lock():
        raise TuningError("Another tuning run is in progress; try again when it has finished.")
    try:
        tuning_status_record(state="running", message="Learning from outcomes.", by=who)
        try:
            result = scoring_tune(**options)
        except DomainError as error:
            tuning_status_record(state="failed", message=error.message, by=who)
            raise
        except Exception as error:
            tuning_status_record(
                state="failed",
                message=f"The run stopped on an unexpected error ({error.__class__.__name__}).",
                by=who,
            )
            raise
        tuning_status_record(
            state=result.status,
            message=result.message,
            by=who,
            model_id=result.model.pk if result.model else None,
            summary=result.report.get("summary", ""),
        )
        return result
    finally:
        tuning_unlock()


def scoring_tune_queue(
    *,
    by: User,
    outcome: str = data.OUTCOME_WON,
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = DEFAULT_SEED,
    exclude_attributes: Iterable[str] = (),
    include_attributes: Iterable[str] = (),
    max_rules: int = DEFAULT_MAX_RULES,
    mqls_per_month: int | None = None,
    min_precision: float | None = None,
) -> dict[str, Any]:
    """Check a person's tuning request and mark it queued on the tuning page; returns the keyword
    arguments for the `leads.scoring_tune` task, which the caller queues."""
    require(by, Action.SCORING_PROPOSE)
    exclude = sorted({name.strip() for name in exclude_attributes if name and name.strip()})
    include = sorted({name.strip() for name in include_attributes if name and name.strip()})
    _check_options(outcome, holdout, seed, DEFAULT_BINS)
    _check_goal(max_rules, mqls_per_month, min_precision)
    options = {
        "outcome": outcome,
        "holdout": holdout,
        "seed": seed,
        "exclude_attributes": exclude,
        "include_attributes": include,
        "max_rules": max_rules,
        "mqls_per_month": mqls_per_month,
        "min_precision": min_precision,
    }
    tuning_status_record(
        state="queued", message="Waiting for a worker.", by=str(by), options=options
    )
    return {**options, "user_id": by.pk}
