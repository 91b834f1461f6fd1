"""Columns fine-tuning must not learn from, found in the data rather than only configured.

Before candidate rules are built, every lead field and attribute that could become one is
screened on the training leads, and left out with a reason the report lists:
- counter: a number that rises (or falls) with the lead id, i.e. with import or creation order
  (|Spearman correlation| > 0.99): a row number or a sequence, whose bands would only say when a
  lead was imported;
- identifier: nearly one value per lead (more than 90% of the leads that have a value have a value
  of their own), for text and whole numbers; a measured fraction (0.37 s, 12.5%) is often unique
  without being an identifier, so it is only left out as a counter;
- constant: one value (a missing value counts as one) on more than 99.5% of the training leads;
- leak: the column alone separates the outcomes almost perfectly (AUC > 0.98 on the training
  leads): known only after the outcome, or a copy of it. Its values are encoded by their share of
  positives, out of fold (5 folds by position, so a value never grades itself), numbers cut into
  quantile bins first, a missing value being one more value.
`--include-attribute` (the `include` names) brings a column back; it does not override the
`post_` convention nor the configured exclusions, which are a person's or the mapping's decision.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from leads.models import normalise_key
from leads.scoring.rules import ATTRIBUTE_PREFIX, MISSING, as_number
from leads.scoring.tuning.learn import auc

IDENTIFIER_SHARE = 0.9
COUNTER_CORRELATION = 0.99
CONSTANT_SHARE = 0.995
LEAK_AUC = 0.98
NUMERIC_SHARE = 0.9
LEAK_BINS = 20
LEAK_FOLDS = 5

COUNTER = "counter"
IDENTIFIER = "identifier"
CONSTANT = "constant"
LEAK = "leak"
POST_OUTCOME = "post_outcome"
CONFIGURED = "configured"


@dataclass(frozen=True)
class Exclusion:
    """A column left out of learning, and why (`detail` is for a person)."""

    field: str
    reason: str
    detail: str

    @property
    def name(self) -> str:
        return self.field.removeprefix(ATTRIBUTE_PREFIX)

    def as_json(self) -> dict:
        return {
            "field": self.field,
            "name": self.name,
            "reason": self.reason,
            "detail": self.detail,
        }


def named(field: str, names: Iterable[str]) -> bool:
    """Is the column one of `names` (an attribute's name or a field's, spelt either way)?"""
    bare = field.removeprefix(ATTRIBUTE_PREFIX)
    wanted = {n.strip() for n in names if n and n.strip()}
    return bool({field, bare} & wanted or normalise_key(bare) in {normalise_key(n) for n in wanted})


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    bounds = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    mean_rank = (bounds[:-1] + bounds[1:] - 1) / 2.0 + 1.0
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(mean_rank, np.diff(bounds))
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return None
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def out_of_fold_auc(codes: np.ndarray, y: np.ndarray, folds: int = LEAK_FOLDS) -> float | None:
    """AUC of each lead's value encoded by the share of positives among the leads of the other
    folds with that value (the overall share for a value they do not have)."""
    size = int(codes.max()) + 1 if len(codes) else 0
    fold = np.arange(len(codes)) % folds
    encoded = np.empty(len(codes))
    for k in range(folds):
        inside, rest = fold == k, fold != k
        prior = float(y[rest].mean()) if rest.any() else 0.5
        count = np.bincount(codes[rest], minlength=size)
        positive = np.bincount(codes[rest], weights=y[rest], minlength=size)
        # one pseudo-lead at the prior: a value seen once does not get a rate of 0 or 1
        encoded[inside] = ((positive + prior) / (count + 1.0))[codes[inside]]
    return auc(encoded, y)


def _numbers(values: Sequence) -> np.ndarray:
    return np.array(
        [np.nan if v is MISSING or (x := as_number(v)) is None else x for v in values], dtype=float
    )


def _shown(value) -> str:
    return "missing" if value is MISSING else repr(value)


def screen_column(
    field: str,
    codes: np.ndarray,
    values: Sequence,
    y: np.ndarray,
    lead_ids: np.ndarray,
    *,
    min_support: int,
) -> Exclusion | None:
    """Why one column (per training lead: the index of its value in `values`) must not be
    learned from, or None. `y` and `lead_ids` are those of the same leads."""
    n = len(codes)
    counts = np.bincount(codes, minlength=len(values))
    is_missing = np.array([v is MISSING for v in values], dtype=bool)
    known = int(counts[~is_missing].sum())
    if not n or known < min_support:
        return None  # too rare to become a rule anyway
    numbers = _numbers(values)
    has_number = ~np.isnan(numbers)
    numeric = counts[has_number].sum() >= NUMERIC_SHARE * known

    if numeric:
        per_lead = numbers[codes]
        rows = ~np.isnan(per_lead)
        rho = spearman(per_lead[rows], lead_ids[rows].astype(float))
        if rho is not None and abs(rho) > COUNTER_CORRELATION:
            direction = "rises" if rho > 0 else "falls"
            return Exclusion(
                field,
                COUNTER,
                f"a number that {direction} with the lead id, i.e. with import order "
                f"(Spearman {rho:+.3f}): a row counter or sequence, not a signal",
            )

    distinct = int(np.count_nonzero(counts[~is_missing]))
    whole = bool(np.all(numbers[has_number & (counts > 0)] % 1 == 0))
    if (not numeric or whole) and distinct > IDENTIFIER_SHARE * known:
        return Exclusion(
            field,
            IDENTIFIER,
            f"{distinct:,} different values among {known:,} training leads that have one "
            f"({distinct / known:.0%}): an identifier, not a signal",
        )

    top = int(np.argmax(counts))
    if counts[top] > CONSTANT_SHARE * n:
        return Exclusion(
            field,
            CONSTANT,
            f"{counts[top] / n:.1%} of the training leads have the same value "
            f"({_shown(values[top])}): nothing to learn from",
        )

    if numeric:
        per_lead = numbers[codes]
        rows = ~np.isnan(per_lead)
        edges = np.unique(np.quantile(per_lead[rows], np.linspace(0, 1, LEAK_BINS + 1)[1:-1]))
        leak_codes = np.full(n, len(edges) + 1, dtype=np.int64)  # missing or not a number
        leak_codes[rows] = np.searchsorted(edges, per_lead[rows], side="right")
    else:
        leak_codes = codes
    separation = out_of_fold_auc(leak_codes, y)
    if separation is not None and separation > LEAK_AUC:
        return Exclusion(
            field,
            LEAK,
            f"alone it predicts the outcome almost perfectly (AUC {separation:.3f} on the "
            "training leads): known only after the outcome, or a copy of it",
        )
    return None
