"""Fine-tuning: learn a scoring model version from outcomes and propose it for sign-off.

Called by the `tune_scoring` command, the weekly Celery job `leads.scoring_tune` and the tuning
page (through that job). The design is described in `leads/scoring/tuning/__init__.py`.
"""

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

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
from leads.scoring.tuning import data, evaluate, features, learn
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
    by: User | None = None,
    system: str = TUNING_SYSTEM,
    now: datetime | None = None,
    propose: bool = True,
) -> TuningResult:
    """Learn a version from the leads whose outcome is known and, unless it equals the active
    version (or a pending tuned proposal), create it and propose it for both managers' sign-off.
    Never activates anything. `propose=False` learns and reports without writing (benchmarks).
    Columns found unfit to learn from (identifiers, counters, constants, leaks) are left out unless
    named in `include_attributes`."""
    if by is not None:
        require(by, Action.SCORING_PROPOSE)
    _check_options(outcome, holdout, seed, bins)
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

    # --- candidate rules and the design matrix
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
    fit_rules, compiled_rules = features.compile_candidates(candidates.fit_rules)
    n = len(y)
    if compiled_rules:
        X_fit = np.column_stack([table.matches(r) for r in compiled_rules]).astype(float)
    else:
        X_fit = np.zeros((n, 0))
    support = X_fit[train].sum(axis=0)
    usable = np.flatnonzero((support >= min_support) & (support <= len(train) - min_support))
    usable = usable[features.distinct_columns(X_fit[:, usable])]
    fit_rules = [fit_rules[j] for j in usable]
    fit_bins = [candidates.bins[j] for j in usable]
    X_fit = X_fit[:, usable]

    kinds = list(features.MARKETING_KINDS)
    decayed = data.decayed_counts(touches, labeled.cutoff, kinds, half_life_days=half_life)
    eng_columns, clips = features.engagement_candidates(
        decayed, train, kinds, min_support=min_support
    )
    if not fit_rules and not eng_columns:
        raise TuningError(
            "No field, attribute or touchpoint kind is common enough among these leads to become "
            f"a rule (each needs at least {min_support} leads). Nothing was created."
        )
    lap("candidates")

    # --- the logistic regression; engagement may only add points, so a kind that comes out
    # negative is dropped and the rest refitted
    def design(eng: list[int], clip: list[float]) -> tuple[np.ndarray, np.ndarray]:
        X_eng = np.minimum(decayed[:, eng], np.array(clip)) if eng else np.zeros((n, 0))
        return np.hstack([X_fit, X_eng]), np.r_[np.ones(X_fit.shape[1]), clip]

    X, scale = design(eng_columns, clips)
    l2, cv_table = learn.choose_l2(X[train], y[train], seed=seed, scale=scale)
    model_fit = learn.fit_logistic(X[train], y[train], l2=l2, scale=scale)
    while True:
        negative = [k for k in range(len(eng_columns)) if model_fit.coef[X_fit.shape[1] + k] < 0]
        if not negative:
            break
        eng_columns = [c for k, c in enumerate(eng_columns) if k not in negative]
        clips = [c for k, c in enumerate(clips) if k not in negative]
        X, scale = design(eng_columns, clips)
        model_fit = learn.fit_logistic(X[train], y[train], l2=l2, scale=scale)
    lap("fit")

    # --- points: one scale for every rule, so that SCORE_SPAN points separate the 5% least from
    # the 5% most promising training leads
    linear = X[train] @ model_fit.coef
    span = float(np.quantile(linear, 0.95) - np.quantile(linear, 0.05))
    if span <= 1e-9:
        raise TuningError(
            "The outcomes show no pattern the candidate rules can express: every lead would get "
            "the same score. Nothing was created."
        )
    per_logit = min(SCORE_SPAN / span, MAX_POINTS_PER_LOGIT)
    p_fit = X_fit.shape[1]
    scored_fit_rules, scored_bins = [], []
    for j, rule in enumerate(fit_rules):
        points = int(round(per_logit * model_fit.coef[j]))
        if points:
            scored_fit_rules.append(
                {k: rule[k] for k in ("field", "op", "value")} | {"points": points}
            )
            scored_bins.append(fit_bins[j])
    scored_fit_rules = features.merge_bins(scored_fit_rules, scored_bins)
    features.name_rules(scored_fit_rules)
    engagement_rules = []
    for k, column in enumerate(eng_columns):
        points = int(round(per_logit * model_fit.coef[p_fit + k]))
        if points > 0:
            kind = kinds[column]
            engagement_rules.append(
                {
                    "key": f"t_eng_{kind}",
                    "kind": kind,
                    "points": points,
                    "group": f"t_{kind}",
                    "cap": max(points, int(round(points * clips[k]))),
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
    fit_floor = _quantile_floor(train_fit[y[train] == 1], FIT_FLOOR_QUANTILE)
    if len(recent) >= MIN_POPULATION and recent.was_mql.any():
        rate = float(recent.was_mql.mean())
        rate_rule = (
            f"the share of the {len(recent)} leads created in the last {BACKTEST_DAYS} days that "
            "became MQLs"
        )
    else:
        rate = float(y[train].mean())
        rate_rule = (
            f"the share of training leads {yes} (no MQL history in the last {BACKTEST_DAYS} "
            "days to match)"
        )
    if len(recent) >= MIN_POPULATION:
        population_fit, population_peak = recent_fit, recent_peak
        population = f"the {len(recent)} leads created in the last {BACKTEST_DAYS} days"
    else:
        train_total = train_fit + evaluate.engagement_scores(draft, train, touches, labeled.cutoff)
        population_fit, population_peak = train_fit, train_total
        population = f"the {len(train)} training leads"
    mql_total = _mql_total(population_fit, population_peak, fit_floor=fit_floor, rate=rate)
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
    active_report = None
    if active:
        active_report = evaluate.holdout_report(
            active, table, hold, y_hold, touches, labeled.cutoff
        )
        active_report.pop("scores")
    proposal_mql = (recent_fit >= proposal.mql_fit) & (recent_peak >= proposal.mql_total)
    backtest = {
        "days": BACKTEST_DAYS,
        "since": since.isoformat(),
        "leads": len(recent),
        "outcomes_known": int(np.sum(recent.label >= 0)),
        "proposal": evaluate.backtest_counts(proposal_mql, recent.label),
        "actual": evaluate.backtest_counts(
            recent.was_mql if len(recent) else np.zeros(0, dtype=bool), recent.label
        ),
        "active": None,
    }
    if active:
        active_fit = features.fit_scores(active, recent_table)
        active_peak = evaluate.peak_totals(active, active_fit, recent_touches, recent.cutoff)
        backtest["active"] = evaluate.backtest_counts(
            (active_fit >= active.mql_fit) & (active_peak >= active.mql_total), recent.label
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
            "fit_rules": len(candidates.fit_rules),
            "fit_rules_used": len(fit_rules),
            "engagement_kinds": [kinds[c] for c in eng_columns],
            "min_support": min_support,
        },
        "model": {
            "l2": l2,
            "cross_validation": cv_table,
            "iterations": model_fit.iterations,
            "points_per_logit": round(per_logit, 4),
            "intercept": round(model_fit.intercept, 4),
            "fit_rules": len(spec["fit_rules"]),
            "engagement_rules": len(spec["engagement_rules"]),
            "half_life_days": half_life,
            "based_on": active_row.pk if active_row else None,
        },
        "thresholds": {
            **thresholds,
            "target_mql_rate": round(rate, 4),
            "rules": {
                "mql_fit": f"fit score below which only {FIT_FLOOR_QUANTILE:.0%} of the "
                f"training leads {yes} fell",
                "mql_total": f"the total that makes about as many MQLs as {rate_rule} "
                f"({rate:.1%}), among {population}, with the fit floor",
                "grades": "A from the 75th percentile of fit, B from the median, C from the "
                f"25th, among {population}",
            },
        },
        "proposal": proposal_report,
        "active": active_report,
        "backtest": backtest,
    }
    active_auc = active_report["auc"] if active_report else None
    summary = (
        f"Learned from {positives} leads {yes} and {negatives} {no}; holdout AUC "
        f"{proposal_report['auc']:.3f}"
        + (f" (active {active_row.label}: {active_auc:.3f})" if active_auc is not None else "")
        + f"; would have made {backtest['proposal']['mqls']} MQLs in the last "
        f"{BACKTEST_DAYS} days, {backtest['proposal']['converted']} of them {yes}."
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
) -> dict[str, Any]:
    """Check a person's tuning request and mark it queued on the tuning page; returns the keyword
    arguments for the `leads.scoring_tune` task, which the caller queues."""
    require(by, Action.SCORING_PROPOSE)
    exclude = sorted({name.strip() for name in exclude_attributes if name and name.strip()})
    _check_options(outcome, holdout, seed, DEFAULT_BINS)
    tuning_status_record(state="queued", message="Waiting for a worker.", by=str(by))
    return {
        "outcome": outcome,
        "holdout": holdout,
        "seed": seed,
        "exclude_attributes": exclude,
        "user_id": by.pk,
    }
