"""The MQL definition and the grades of a tuned version, from a goal a manager can state: about N
MQLs a month, or a precision of at least P%, or else as many MQLs as were made lately.

Pure: the caller reads the leads (`data`) and scores them with the draft (`evaluate`); this module
only chooses the whole-number thresholds and says in words how it chose them.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from leads.scoring.tuning.data import TuningError

# a precision goal counts only at a threshold where at least this many training leads qualify
MIN_QUALIFIED = 20
# the fit floor of the MQL definition: only this share of the leads that converted fell below it
FIT_FLOOR_QUANTILE = 0.05
# grade A from the 75th percentile of fit, B from the median, C from the 25th
GRADE_QUANTILES = (0.75, 0.5, 0.25)
# the recent leads set the MQL threshold when there are at least this many of them
MIN_POPULATION = 100


def check_goal(max_rules: int, mqls_per_month: int | None, min_precision: float | None) -> None:
    """The budget of rules and the goal are usable, else TuningError on the field."""
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


def quantile_floor(values: np.ndarray, q: float) -> int:
    return int(math.floor(float(np.quantile(values, q)))) if len(values) else 0


def precision_total(
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


def mql_total(fit: np.ndarray, peak: np.ndarray, *, fit_floor: int, rate: float) -> int:
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


@dataclass
class Recent:
    """The leads created in the last `days` days, or a sample of them, scored by the draft: fit,
    the peak total over time (a crossing happens at a touchpoint), whether each became an MQL in
    fact; `arrived` is how many there were in all."""

    fit: np.ndarray
    total: np.ndarray
    was_mql: np.ndarray
    arrived: int
    days: int


@dataclass
class Train:
    """The training leads scored by the draft: fit, and `total()`, the total at the moment each
    counted (computed only when a precision goal or too few recent leads need it)."""

    fit: np.ndarray
    totals: Callable[[], np.ndarray]
    _total: np.ndarray | None = None

    def total(self) -> np.ndarray:
        if self._total is None:
            self._total = self.totals()
        return self._total


@dataclass
class Choice:
    values: dict
    rate: float | None
    share: float
    rules: dict


def choose(
    *,
    train: Train,
    y: np.ndarray,
    recent: Recent,
    monthly: float | None,
    mqls_per_month: int | None,
    min_precision: float | None,
    yes: str,
) -> Choice:
    """The fit floor, the MQL total and the grades. The fit floor leaves out only
    FIT_FLOOR_QUANTILE of the training positives (never below 0). The total meets the goal:
    a precision on the training leads, or a share of MQLs (the goal's monthly MQLs over the
    monthly arrivals, else the recent MQL rate, else the share of positives), measured on the
    recent leads when there are MIN_POPULATION of them, else on the training leads. `y` is the
    training leads' outcome."""
    fit_floor = max(0, quantile_floor(train.fit[y == 1], FIT_FLOOR_QUANTILE))
    if len(recent.fit) >= MIN_POPULATION:
        population_fit, population_total = recent.fit, recent.total
        sampled = len(recent.fit) < recent.arrived
        population_words = (
            f"a sample of {len(recent.fit):,} of the {recent.arrived:,} leads created in the last "
            f"{recent.days} days"
            if sampled
            else f"the {recent.arrived:,} leads created in the last {recent.days} days"
        )
    else:
        population_fit, population_total = train.fit, train.total()
        population_words = f"the {len(train.fit):,} training leads"
    rate = None
    if min_precision is not None:
        total = precision_total(
            train.fit, train.total(), y, fit_floor=fit_floor, precision=min_precision
        )
        goal_rule = (
            f"the lowest total at which at least {min_precision:.0%} of the training leads that "
            f"qualify were {yes}"
        )
    else:
        if mqls_per_month is not None:
            if monthly is None:
                raise TuningError(
                    f"No lead arrived in the last {recent.days} days, so “about "
                    f"{mqls_per_month} MQLs a month” cannot be turned into a threshold; state "
                    "the precision you want instead. Nothing was created.",
                    field="mqls_per_month",
                )
            rate = min(1.0, mqls_per_month / monthly)
            rate_rule = (
                f"about {mqls_per_month} MQLs a month, of the {monthly:,.0f} leads that arrive "
                "in a month"
            )
        elif len(recent.fit) >= MIN_POPULATION and recent.was_mql.any():
            rate = float(recent.was_mql.mean())
            rate_rule = (
                f"as many MQLs as were made: the share of {population_words} that became MQLs"
            )
        else:
            rate = float(y.mean())
            rate_rule = (
                f"the share of training leads {yes} (no MQL history in the last {recent.days} "
                "days to match)"
            )
        total = mql_total(population_fit, population_total, fit_floor=fit_floor, rate=rate)
        goal_rule = f"the total that makes {rate_rule} ({rate:.1%}), among {population_words}"
    qualifying = (population_fit >= fit_floor) & (population_total >= total)
    share = float(qualifying.mean()) if len(qualifying) else 0.0
    grade_a, grade_b, grade_c = (quantile_floor(population_fit, q) for q in GRADE_QUANTILES)
    return Choice(
        values={
            "mql_total": total,
            "mql_fit": fit_floor,
            "grade_a": grade_a,
            "grade_b": grade_b,
            "grade_c": grade_c,
        },
        rate=rate,
        share=share,
        rules={
            "mql_fit": f"fit score below which only {FIT_FLOOR_QUANTILE:.0%} of the "
            f"training leads {yes} fell (never below 0)",
            "mql_total": f"{goal_rule}, with the fit floor",
            "grades": "A from the 75th percentile of fit, B from the median, C from the "
            f"25th, among {population_words}",
        },
    )
