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

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alignment.models import User
from alignment.permissions import Action, require
from leads.models import Lead
from leads.scoring.compiled import compiled_model
from leads.scoring.models import ModelOrigin, ModelStatus, ScoringModel
from leads.scoring.rules import (
    compile_spec,
    spec_diff,
    spec_of,
    validate_spec,
)
from leads.scoring.services import scoring_model_create, scoring_model_propose
from leads.scoring.tuning import data, evaluate, features, learn, shapes, thresholds
from leads.scoring.tuning.data import TuningError
from leads.scoring.tuning.touches import decayed_counts, touchpoints

logger = logging.getLogger(__name__)

TUNING_SYSTEM = "tuning"
DEFAULT_HOLDOUT = 0.3
DEFAULT_SEED = 0
DEFAULT_BINS = 20
DEFAULT_MAX_RULES = 25
# the MQL threshold and the grades are set on the leads created in this many days
BACKTEST_DAYS = 90
# a candidate rule needs this many training leads on each side (matching and not matching)
MIN_SUPPORT_ROWS = 30
MIN_SUPPORT_SHARE = 0.001
# points between the 5% least and the 5% most promising training leads
SCORE_SPAN = 100
MAX_POINTS_PER_LOGIT = 1000.0
DEFAULT_HALF_LIFE_DAYS = 30.0


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


def check_options(outcome: str, holdout: float, seed: int, bins: int) -> None:
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
    check_options(outcome, holdout, seed, bins)
    thresholds.check_goal(max_rules, mqls_per_month, min_precision)
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
    positives, negatives = labeled.counts()
    yes, no = data.OUTCOME_WORDS[outcome]
    too_few = labeled.too_few(outcome)
    if too_few:
        raise TuningError(
            f"Too few outcomes to learn from: {too_few}; fine-tuning needs at least "
            f"{data.MIN_OUTCOMES} of each. Nothing was created.",
            field="outcome",
        )
    train, hold = learn.stratified_split(y, share=holdout, seed=seed)
    active_kinds = set(active.kinds) if active else set()
    with_metadata = bool(active and any(r.metadata for r in active.engagement_rules))
    touches = touchpoints(
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
    sample = features.learning_sample(y, seed=seed)
    blocks, columns = features.blocks_with_columns(
        candidates.blocks, table, in_train, min_support, sample
    )

    kinds = list(features.MARKETING_KINDS)
    decayed = decayed_counts(touches, labeled.cutoff, kinds, half_life_days=half_life)
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
    X = shapes.design(columns, len(sample), dense=X_eng)
    del decayed, columns, X_eng
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
    recent_touches = touchpoints(
        Lead.objects.filter(created_at__gte=since),
        recent.ids,
        kinds=set(draft.kinds) | active_kinds,
        with_metadata=with_metadata,
    )
    recent_fit = features.fit_scores(draft, features.LeadTable(recent.leads))
    monthly = evaluate.leads_per_month(recent.arrived, days=BACKTEST_DAYS)
    choice = thresholds.choose(
        train=thresholds.Train(
            fit=features.fit_scores(draft, table)[train],
            totals=lambda: features.fit_scores(draft, table)[train]
            + evaluate.engagement_scores(draft, train, touches, labeled.cutoff),
        ),
        y=y[train],
        recent=thresholds.Recent(
            fit=recent_fit,
            total=evaluate.peak_totals(draft, recent_fit, recent_touches, recent.cutoff),
            was_mql=recent.was_mql,
            arrived=recent.arrived,
            days=BACKTEST_DAYS,
        ),
        monthly=monthly,
        mqls_per_month=mqls_per_month,
        min_precision=min_precision,
        yes=yes,
    )
    del recent, recent_touches, recent_fit
    spec = _spec(
        half_life=half_life,
        fit_rules=scored_fit_rules,
        engagement=engagement_rules,
        thresholds=choice.values,
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
    out_of_time = evaluate.out_of_time(
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
            **choice.values,
            "target_mql_rate": None if choice.rate is None else round(choice.rate, 4),
            "goal": {"mqls_per_month": mqls_per_month, "min_precision": min_precision},
            "leads_per_month": None if monthly is None else round(monthly, 1),
            "qualifying_share": round(choice.share, 4),
            "expected_mqls_per_month": (
                None if monthly is None else round(choice.share * monthly, 1)
            ),
            "rules": choice.rules,
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
            f"; about {choice.share * monthly:,.0f} MQLs a month"
            if monthly is not None
            else f"; {choice.share:.1%} of the leads would qualify"
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
