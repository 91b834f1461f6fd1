"""The shapes a tuned model may take: each candidate field becomes a block of 0/1 columns of the
design matrix, and the points the fit gives those columns become readable fit rules.

- A category (title, industry, a text or yes/no attribute): its frequent values ordered by their
  share of positives among the training leads, and a ladder over that order: column k is "the
  value is one of the k-th most promising and better". Every step may only add points, so the
  values fall into a few tiers ("month is one of mar, dec: +35"), the least promising tier (with
  rare and missing values) getting no rule. A yes/no fact therefore has one column and can never
  become a mirrored pair ("is No +7" and "is Yes −7").
- A number: a ladder of cut points at round values ("≥ 30"), at least `min_band` training leads
  apart so that no band is narrow noise. The bands are the stretches between the cuts the fit keeps.
  Which way the ladder runs is read from the data: the share of positives per quantile bin is fitted
  by isotonic regression upwards and downwards, and the better direction is taken unless the bins
  themselves fit clearly better than either (a U shape, e.g. the young and the old), by more than
  `FREE_SHAPE_DEVIANCE` of binomial deviance. On a monotone field every step of the ladder may only
  add points (the columns are constrained to non-negative weights), so the points of the bands
  rise, or fall, with the number. The band a missing value falls in gets no points, as the scoring
  service gives it.
- A missing value (exists: false): one column, for a field missing on enough leads.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.isotonic import IsotonicRegression

from leads.scoring.rules import as_number, compile_spec, validate_spec

CATEGORY = "category"
NUMBER = "number"
FLAG = "flag"
UP, DOWN, FREE = 1, -1, 0
# deviance the free shape must save over the best monotone one to be allowed (a likelihood-ratio
# statistic: chi-square with a handful of degrees of freedom is far below this)
FREE_SHAPE_DEVIANCE = 40.0
DIRECTION_WORDS = {UP: "rises with the number", DOWN: "falls with the number", FREE: "free shape"}


@dataclass
class Block:
    """One field's columns. For a flag, `rules` holds its one rule (spec form). For a category,
    `rules` holds one `eq` rule per frequent value, least promising first, and `cuts` the
    positions where its tiers may start (column k: one of rules[cuts[k]:]). For a number, `cuts`
    is the ladder (ascending) and `direction` which way its columns point: UP and FREE columns are
    `x ≥ cut`, DOWN columns `x < cut`."""

    field: str
    kind: str
    rules: list[dict] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)
    direction: int = FREE
    places: int = 0
    start: int = 0  # the block's first column in the design matrix

    @property
    def width(self) -> int:
        return len(self.rules) if self.kind == FLAG else len(self.cuts)

    @property
    def non_negative(self) -> bool:
        """Must every column's weight be ≥ 0 (a monotone number, a category's tiers)?"""
        return self.kind == CATEGORY or (self.kind == NUMBER and self.direction != FREE)

    def as_json(self) -> dict:
        out = {"field": self.field, "kind": self.kind, "columns": self.width}
        if self.kind == NUMBER:
            out["shape"] = DIRECTION_WORDS[self.direction]
        return out


# --- round cut points --------------------------------------------------------------------------


def _decimals(values: np.ndarray) -> int:
    most = 0
    for v in values[:2000]:
        if v != int(v):
            text = repr(float(v))
            if "e" in text or "E" in text:
                return 6
            most = max(most, len(text.split(".")[1]))
    return min(most, 6)


def roundest(low: float, high: float, places: int) -> float:
    """The number in (low, high] with the fewest significant digits (at most `places` decimals):
    the cut a person reads most easily among those that split the data the same way."""
    span = max(abs(low), abs(high), 1e-12)
    top = math.ceil(math.log10(span)) + 1
    for exponent in range(top, -places - 1, -1):
        for mult in (10, 5, 2, 1):
            step = mult * 10.0 ** (exponent - 1)
            if step < 10.0**-places - 1e-15:
                continue
            t = round((math.floor(low / step + 1e-9) + 1) * step, places)
            if low < t <= high + 1e-12:
                return float(t)
    return float(round(high, places))


def ladder(numbers: np.ndarray, *, bins: int, min_band: int) -> tuple[list[float], int]:
    """Cut points over the training leads' values of one number: at every change of value when
    there are few, else near the quantiles, each moved to the roundest number nearby that splits
    the data the same way, and dropped when the band it closes would hold fewer than `min_band`
    leads. Returns the cuts and the decimals the data is written with."""
    values = np.sort(numbers[~np.isnan(numbers)])
    if len(values) < 2 * min_band:
        return [], 0
    places = _decimals(np.unique(values))
    distinct = np.unique(values)
    if len(distinct) <= 2 * bins:
        windows = [(distinct[i - 1], distinct[i]) for i in range(1, len(distinct))]
    else:
        windows = []
        n = len(values)
        for i in range(1, bins):
            lo = values[max(0, int((i - 0.35) / bins * n))]
            hi = values[min(n - 1, int((i + 0.35) / bins * n))]
            if lo < hi:
                windows.append((lo, hi))
    cuts: list[float] = []
    below_last = 0
    for lo, hi in windows:
        t = roundest(float(lo), float(hi), places)
        below = int(np.searchsorted(values, t, side="left"))
        wide = below - below_last >= min_band and len(values) - below >= min_band
        if wide and (not cuts or t > cuts[-1]):
            cuts.append(t)
            below_last = below
    return cuts, places


def _deviance(rate: np.ndarray, positives: np.ndarray, counts: np.ndarray) -> float:
    p = np.clip(rate, 1e-6, 1 - 1e-6)
    return float(-2.0 * np.sum(positives * np.log(p) + (counts - positives) * np.log(1 - p)))


def direction_of(numbers: np.ndarray, y: np.ndarray, cuts: Sequence[float]) -> int:
    """UP, DOWN or FREE for one number, from its training leads (missing values left out)."""
    known = ~np.isnan(numbers)
    if not cuts or known.sum() == 0:
        return UP
    band = np.searchsorted(np.asarray(cuts), numbers[known], side="right")
    counts = np.bincount(band, minlength=len(cuts) + 1).astype(float)
    positives = np.bincount(band, weights=y[known], minlength=len(cuts) + 1)
    used = counts > 0
    counts, positives = counts[used], positives[used]
    rate = positives / counts
    x = np.arange(len(rate), dtype=float)
    free = _deviance(rate, positives, counts)
    fits = {}
    for direction in (UP, DOWN):
        fitted = IsotonicRegression(increasing=direction == UP).fit_transform(
            x, rate, sample_weight=counts
        )
        fits[direction] = _deviance(fitted, positives, counts)
    best = UP if fits[UP] <= fits[DOWN] else DOWN
    return FREE if fits[best] - free > FREE_SHAPE_DEVIANCE else best


# --- the design matrix --------------------------------------------------------------------------


def numbers_of(table, field_name: str) -> np.ndarray:
    """Per lead of a `features.LeadTable`: the field as a number, NaN when it is none."""
    column = table.column(field_name)
    values = np.array(
        [np.nan if (x := as_number(v)) is None else x for v in column.values], dtype=float
    )
    return values[column.codes]


def compiled_rules(rules: list[dict]) -> list:
    spec = {
        "half_life_days": 30.0,
        "mql_total": 0,
        "mql_fit": 0,
        "grade_a": 0,
        "grade_b": 0,
        "grade_c": 0,
        "fit_rules": [{**r, "key": f"candidate_{i}", "points": 1} for i, r in enumerate(rules)],
    }
    return list(compile_spec(validate_spec(spec)).fit_rules)


def block_columns(block: Block, table, numbers: np.ndarray | None) -> list[np.ndarray]:
    """The rows (indices of the `features.LeadTable`) where each of the block's columns is 1."""
    if block.kind == NUMBER:
        assert numbers is not None
        out = []
        for cut in block.cuts:
            hit = numbers < cut if block.direction == DOWN else numbers >= cut
            out.append(np.flatnonzero(hit & ~np.isnan(numbers)))
        return out
    matches = [table.matches(rule) for rule in compiled_rules(block.rules)]
    if block.kind == FLAG:
        return [np.flatnonzero(m) for m in matches]
    return [np.flatnonzero(np.any(matches[k:], axis=0)) for k in block.cuts]


def category_block(field_name: str, rules: list[dict], table, train: np.ndarray, y: np.ndarray):
    """The category block of one field from its frequent values' `eq` rules, or None: the values
    ordered by their share of positives among the training leads (least first); a tier may start
    at every value but the first, and at the first too when the leads with no frequent value are
    many enough to be a tier of their own."""
    if not rules:
        return None
    matches = [table.matches(rule)[train] for rule in compiled_rules(rules)]
    yt = y[train].astype(float)
    rates = [float(yt[m].mean()) if m.any() else 0.0 for m in matches]
    order = sorted(range(len(rules)), key=lambda k: (rates[k], k))
    covered = int(np.any(matches, axis=0).sum())
    smallest = min(int(m.sum()) for m in matches)
    start = 0 if len(train) - covered >= smallest else 1
    cuts = list(range(start, len(rules)))
    if not cuts:
        return None
    return Block(field_name, CATEGORY, rules=[rules[k] for k in order], cuts=cuts)


def design(columns: list[np.ndarray], n: int, dense: np.ndarray | None = None) -> sparse.csc_matrix:
    """A sparse matrix (leads x columns), column-major: a 0/1 column from each column's rows,
    then the columns of `dense` (n x k, their non-zero entries), built in one piece."""
    parts = [np.asarray(c, dtype=np.int32) for c in columns]
    values = [np.ones(len(c)) for c in parts]
    if dense is not None:
        for j in range(dense.shape[1]):
            rows = np.flatnonzero(dense[:, j]).astype(np.int32)
            parts.append(rows)
            values.append(dense[rows, j].astype(float))
    if not parts:
        return sparse.csc_matrix((n, 0))
    indptr = np.r_[0, np.cumsum([len(c) for c in parts])]
    # 32-bit positions when they fit: scipy then keeps the indices at 4 bytes an entry
    indptr = indptr.astype(np.int32 if indptr[-1] < 2**31 - 1 else np.int64)
    indices = np.concatenate(parts)
    data = np.concatenate(values)
    del parts, values
    return sparse.csc_matrix((data, indices, indptr), shape=(n, len(indptr) - 1))


# --- from weights back to rules -----------------------------------------------------------------


def _band_rule(field_name: str, low: float | None, high: float | None, places: int) -> dict:
    """The band [low, high) of a number as a rule, bounds as the data writes them."""

    def shown(x: float) -> float | int:
        return int(round(x)) if places == 0 else round(float(x), places)

    unit = 10.0**-places
    if low is None:
        return {"field": field_name, "op": "lt", "value": shown(high)}
    if high is None:
        return {"field": field_name, "op": "gte", "value": shown(low)}
    upper = shown(high - unit)
    if upper == shown(low):
        return {"field": field_name, "op": "eq", "value": upper}
    return {"field": field_name, "op": "between", "value": [shown(low), upper]}


def _tier_rules(block: Block, weights: np.ndarray, per_logit: float) -> list[dict]:
    """A category's tiers: the values from one kept cut to the next share the points of every
    cut at or below them."""
    value = np.zeros(len(block.rules))
    for start, w in zip(block.cuts, weights, strict=True):
        value[start:] += w
    points = [int(round(per_logit * v)) for v in value]
    tiers: list[list] = []
    for k, p in enumerate(points):
        if tiers and tiers[-1][1] == p:
            tiers[-1][0].append(k)
        else:
            tiers.append([[k], p])
    out = []
    for members, p in tiers:
        if not p:
            continue
        values = [block.rules[k]["value"] for k in members]
        if len(values) == 1:
            out.append({"field": block.field, "op": "eq", "value": values[0], "points": p})
        else:
            out.append({"field": block.field, "op": "in", "value": values, "points": p})
    return out


def block_rules(block: Block, weights: np.ndarray, per_logit: float) -> list[dict]:
    """The fit rules (spec form, with points) that score every lead as the block's weights do,
    scaled to points. Bands of a number whose points round the same are one rule; 0 points, no
    rule."""
    if block.kind == FLAG:
        out = []
        for rule, w in zip(block.rules, weights, strict=True):
            points = int(round(per_logit * w))
            if points:
                out.append({**rule, "points": points})
        return out
    if block.kind == CATEGORY:
        return _tier_rules(block, weights, per_logit)
    kept = [(c, w) for c, w in zip(block.cuts, weights, strict=True) if w != 0]
    if not kept:
        return []
    cuts = [c for c, _ in kept]
    w = np.array([w for _, w in kept])
    edges: list[float | None] = [None, *cuts, None]
    # the value of each band: below the first cut, between cuts, above the last
    if block.direction == DOWN:
        values = [float(w[i:].sum()) for i in range(len(cuts) + 1)]
    else:
        values = [float(w[:i].sum()) for i in range(len(cuts) + 1)]
    points = [int(round(per_logit * v)) for v in values]
    # neighbouring bands with the same points are one band
    bands: list[list] = []
    for i, p in enumerate(points):
        if bands and bands[-1][2] == p:
            bands[-1][1] = edges[i + 1]
        else:
            bands.append([edges[i], edges[i + 1], p])
    return [
        {**_band_rule(block.field, low, high, block.places), "points": p}
        for low, high, p in bands
        if p
    ]
