"""Candidate rules and the design matrix they make.

A lead is the dict `rules.lead_values` builds; a rule is evaluated by the scoring service's own
compiled rule (`FitRule.matches`), once per distinct value of its field rather than once per lead,
so a column of the design matrix is exactly what the rule would give when it scores the lead.
"""

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leads.models import SALES_TOUCHPOINT_KINDS, TouchpointKind, normalise_key
from leads.scoring.rules import (
    ATTRIBUTE_PREFIX,
    MISSING,
    NUMBER_FIELDS,
    CompiledModel,
    FitRule,
    as_number,
    is_missing,
    norm_text,
)
from leads.scoring.tuning.learn import stratified_split
from leads.scoring.tuning.screening import (
    CONFIGURED,
    POST_OUTCOME,
    Exclusion,
    named,
    screen_column,
)
from leads.scoring.tuning.shapes import (
    FLAG,
    NUMBER,
    Block,
    block_columns,
    category_block,
    direction_of,
    ladder,
    numbers_of,
)

# fields whose values are categories (one rule per frequent value)
CATEGORY_FIELDS = (
    "title",
    "industry",
    "country",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
# fields that identify a person: only whether they are known can say something
PRESENCE_FIELDS = ("email", "first_name", "last_name", "phone", "company", "website")
# engagement is what marketing sees before sales works the lead: sales touches would leak the
# outcome (a meeting is booked because the lead is already good)
MARKETING_KINDS = tuple(k for k in TouchpointKind.values if k not in SALES_TOUCHPOINT_KINDS)
# an imported attribute named post_... is only known after the outcome and is never a candidate
POST_OUTCOME_PREFIX = "post_"

MAX_LEVELS = 40  # most frequent values per category field
MAX_NUMBER_LEVELS = 30  # a number with at most this many values is also tried as a category
NUMERIC_SHARE = 0.9  # an attribute is a number when this share of its known values are numbers
ENGAGEMENT_CLIP_QUANTILE = 0.95
# the narrowest band of a number, as a share of the training leads
MIN_BAND_SHARE = 0.01
# the most leads the selection learns from (a stratified sample beyond): plenty for 25 rules, and
# it bounds the memory of the design matrix at a million leads
LEARNING_SAMPLE = 120_000
_MISSING_KEY = ("missing",)


@dataclass
class Column:
    """One field over the leads of a table: per lead the index of its value in `values`."""

    field: str
    codes: np.ndarray
    values: list[Any]

    def counts(self, rows: np.ndarray | None = None) -> np.ndarray:
        codes = self.codes if rows is None else self.codes[rows]
        return np.bincount(codes, minlength=len(self.values))


def _read(lead: dict, field_name: str) -> Any:
    if field_name.startswith(ATTRIBUTE_PREFIX):
        return lead["attributes"].get(field_name.removeprefix(ATTRIBUTE_PREFIX), MISSING)
    return lead.get(field_name)


def _probe(field_name: str, value: Any) -> dict:
    """The smallest lead a rule on `field_name` can read `value` from."""
    if field_name.startswith(ATTRIBUTE_PREFIX):
        name = field_name.removeprefix(ATTRIBUTE_PREFIX)
        return {"attributes": {} if value is MISSING else {name: value}}
    return {"attributes": {}, field_name: None if value is MISSING else value}


def _value_key(value: Any) -> tuple:
    if is_missing(value):
        return _MISSING_KEY
    if isinstance(value, str | bool | int | float):
        return (type(value).__name__, value)
    return ("json", json.dumps(value, sort_keys=True, default=str))


class LeadTable:
    """The leads being learned from or scored, with per-field columns built on demand."""

    def __init__(self, leads: Sequence[dict]):
        self.leads = leads
        self._columns: dict[str, Column] = {}

    def __len__(self) -> int:
        return len(self.leads)

    def column(self, field_name: str) -> Column:
        found = self._columns.get(field_name)
        if found is None:
            index: dict[tuple, int] = {}
            values: list[Any] = []
            codes = np.empty(len(self.leads), dtype=np.int64)
            for i, lead in enumerate(self.leads):
                value = _read(lead, field_name)
                key = _value_key(value)
                code = index.get(key)
                if code is None:
                    code = index[key] = len(values)
                    values.append(MISSING if key == _MISSING_KEY else value)
                codes[i] = code
            found = self._columns[field_name] = Column(field_name, codes, values)
        return found

    def matches(self, rule: FitRule) -> np.ndarray:
        """Per lead: does the rule match? (The rule itself decides, once per distinct value.)"""
        column = self.column(rule.field)
        hit = np.fromiter(
            (rule.matches(_probe(rule.field, v)) for v in column.values),
            dtype=bool,
            count=len(column.values),
        )
        return hit[column.codes]

    def attribute_names(self) -> list[str]:
        names: set[str] = set()
        for lead in self.leads:
            names.update(lead["attributes"])
        return sorted(names)


def fit_scores(model: CompiledModel, table: LeadTable) -> np.ndarray:
    """Every lead's fit score under `model`: the rule matches from the rules themselves, the sum and
    the caps as `rules.fit_total` applies them (a test checks both agree lead by lead)."""
    total = np.zeros(len(table))
    groups: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(table)))
    for rule in model.fit_rules:
        points = table.matches(rule) * float(rule.points)
        if model.cap(rule.group) is None:
            total += points
        else:
            groups[rule.group] += points
    for group, summed in groups.items():
        total += np.minimum(float(model.group_caps[group]), summed)
    return total


# --- candidates -------------------------------------------------------------------------------


@dataclass
class Candidates:
    """The blocks of columns a fit chooses its rules from (`shapes`), per field."""

    blocks: list[Block] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    # every column left out, with why; and those found but brought back by `include`
    excluded: list[Exclusion] = field(default_factory=list)
    included: list[Exclusion] = field(default_factory=list)


def _number_text(x: float) -> str:
    text = f"{x:g}" if abs(x) < 1e15 else str(int(x))
    return ("m" + text[1:] if text.startswith("-") else text).replace(".", "_")


def _category_rules(column: Column, counts: np.ndarray, min_support: int) -> list[dict]:
    """One `eq` rule per value held by at least `min_support` of the counted leads, the most
    frequent first (the rest in a stable order)."""
    support: Counter = Counter()
    spellings: dict[tuple, Counter] = defaultdict(Counter)
    for code, value in enumerate(column.values):
        if value is MISSING or not counts[code]:
            continue
        if isinstance(value, str):
            key: tuple = ("s", norm_text(value))
            shown: Any = value.strip()
        elif isinstance(value, bool):
            key, shown = ("b", value), value
        elif isinstance(value, int | float) and math.isfinite(value):
            key, shown = ("n", float(value)), value
        else:
            continue
        support[key] += int(counts[code])
        spellings[key][shown] += int(counts[code])
    kept = sorted(
        (k for k, n in support.items() if n >= min_support),
        key=lambda k: (-support[k], repr(k)),
    )[:MAX_LEVELS]
    rules = []
    for key in kept[:1] + sorted(kept[1:], key=repr):
        # the most frequent spelling is shown; eq compares text case-insensitively anyway
        shown = sorted(spellings[key].items(), key=lambda item: (-item[1], repr(item[0])))[0][0]
        rules.append({"field": column.field, "op": "eq", "value": shown})
    return rules


def candidate_rules(
    table: LeadTable,
    train: np.ndarray,
    *,
    bins: int,
    min_support: int,
    exclude: Iterable[str],
    y: np.ndarray,
    lead_ids: np.ndarray | None = None,
    include: Iterable[str] = (),
) -> Candidates:
    """The blocks of candidate columns, from the training leads only (`y` per lead of the table:
    the outcome). With `lead_ids`, columns that must not be learned from are found first
    (`screening`) and left out unless named in `include`."""
    excluded = {normalise_key(name) for name in exclude}
    include = list(include)
    out = Candidates()
    attribute_fields = []
    for name in table.attribute_names():
        if name.startswith(POST_OUTCOME_PREFIX):
            out.excluded.append(
                Exclusion(
                    ATTRIBUTE_PREFIX + name,
                    POST_OUTCOME,
                    "named post_…: known only after the outcome (the import mapping says so)",
                )
            )
        elif name in excluded or normalise_key(name) in excluded:
            out.excluded.append(
                Exclusion(
                    ATTRIBUTE_PREFIX + name,
                    CONFIGURED,
                    "left out by the run's options or SCORING_TUNING_EXCLUDE_ATTRIBUTES",
                )
            )
        else:
            attribute_fields.append(ATTRIBUTE_PREFIX + name)
    fields = [*CATEGORY_FIELDS, *sorted(NUMBER_FIELDS), *PRESENCE_FIELDS, *attribute_fields]
    if lead_ids is not None:
        screened = []
        for field_name in fields:
            # identity fields only ever get an "is missing" rule: unique values are expected
            found = (
                None
                if field_name in PRESENCE_FIELDS
                else screen_column(
                    field_name,
                    table.column(field_name).codes[train],
                    table.column(field_name).values,
                    y[train],
                    lead_ids[train],
                    min_support=min_support,
                )
            )
            if found is None:
                screened.append(field_name)
            elif named(field_name, include):
                out.included.append(found)
                screened.append(field_name)
            else:
                out.excluded.append(found)
        fields = screened
    n = len(train)
    min_band = max(min_support, math.ceil(MIN_BAND_SHARE * n))
    for field_name in fields:
        column = table.column(field_name)
        counts = column.counts(train)
        missing = sum(int(counts[c]) for c, v in enumerate(column.values) if v is MISSING)
        if n - missing < min_support:
            continue
        out.fields.append(field_name)
        numbers = None
        if field_name in NUMBER_FIELDS or field_name.startswith(ATTRIBUTE_PREFIX):
            as_numbers = np.array(
                [np.nan if (x := as_number(v)) is None else x for v in column.values],
                dtype=float,
            )
            known = ~np.isnan(as_numbers)
            share = counts[known].sum() / max(1, n - missing)
            if field_name in NUMBER_FIELDS or share >= NUMERIC_SHARE:
                numbers = as_numbers[column.codes][train]
        if numbers is not None:
            cuts, places = ladder(numbers, bins=bins, min_band=min_band)
            if cuts:
                direction = direction_of(numbers, y[train].astype(float), cuts)
                out.blocks.append(
                    Block(field_name, NUMBER, cuts=cuts, direction=direction, places=places)
                )
            # a number of few values (a rate, an index published once a month) may also act as
            # a category: its values in tiers by their share of positives, whatever their order
            if len(np.unique(numbers[~np.isnan(numbers)])) <= MAX_NUMBER_LEVELS:
                block = category_block(
                    field_name, _category_rules(column, counts, min_support), table, train, y
                )
                if block is not None:
                    out.blocks.append(block)
        elif field_name in CATEGORY_FIELDS or field_name.startswith(ATTRIBUTE_PREFIX):
            levels = _category_rules(column, counts, min_support)
            block = category_block(field_name, levels, table, train, y)
            if block is not None:
                out.blocks.append(block)
            # each value on its own too (the most frequent is the baseline), either sign
            if len(levels) > 2 or block is None:
                out.blocks.append(Block(field_name, FLAG, rules=levels[1:]))
        if min_support <= missing <= n - min_support:
            out.blocks.append(
                Block(
                    field_name, FLAG, rules=[{"field": field_name, "op": "exists", "value": False}]
                )
            )
    return out


def name_rules(rules: list[dict]) -> None:
    """Stable keys: the same rule gets the same key in every tuning run, so the diff between two
    versions shows points that changed rather than rules removed and added."""
    seen: set[str] = set()
    for rule in rules:
        name = normalise_key(rule["field"].removeprefix(ATTRIBUTE_PREFIX))
        value = rule["value"]
        if rule["op"] == "exists":
            suffix = "missing"
        elif rule["op"] == "eq" and isinstance(value, int | float) and not isinstance(value, bool):
            suffix = _number_text(value)
        elif rule["op"] == "eq":
            suffix = normalise_key(str(value)) or "value"
        elif rule["op"] == "in":
            suffix = "_".join(normalise_key(str(v)) for v in value)[:40] or "values"
        elif rule["op"] == "between":
            suffix = f"{_number_text(value[0])}_to_{_number_text(value[1])}"
        else:
            suffix = f"{rule['op']}_{_number_text(value)}"
        key = f"t_{name}_{suffix}"[:76]
        unique, i = key, 2
        while unique in seen:
            unique, i = f"{key}_{i}", i + 1
        seen.add(unique)
        rule["key"] = unique


def engagement_candidates(
    decayed: np.ndarray, train: np.ndarray, kinds: Sequence[str], *, min_support: int
) -> tuple[list[int], list[float]]:
    """Kinds with enough training leads that had one, and per kind the clip of its decayed count
    (the 95th percentile among those leads): the group cap is the points of that many."""
    chosen, clips = [], []
    for j, _kind in enumerate(kinds):
        values = decayed[train, j]
        active = values[values > 0]
        if len(active) < min_support:
            continue
        chosen.append(j)
        clips.append(max(1.0, float(np.quantile(active, ENGAGEMENT_CLIP_QUANTILE))))
    return chosen, clips


def learning_sample(y: np.ndarray, *, seed: int) -> np.ndarray:
    """The rows the selection learns from: all of them, or a stratified sample of
    LEARNING_SAMPLE (fixed by the seed) when there are more."""
    if len(y) <= LEARNING_SAMPLE:
        return np.arange(len(y))
    return stratified_split(y, share=LEARNING_SAMPLE / len(y), seed=seed + 1)[1]


def blocks_with_columns(
    blocks: list[Block],
    table: "LeadTable",
    in_train: np.ndarray,
    min_support: int,
    sample: np.ndarray,
) -> tuple[list[Block], list[np.ndarray]]:
    """Each block's columns (the positions in `sample`, the rows learned from, where each is 1),
    without the columns too rare or too common among the training leads; the blocks left, each
    knowing where its columns start."""
    trained = int(in_train.sum())
    member = np.zeros(len(in_train), dtype=bool)
    member[sample] = True
    position = np.cumsum(member) - 1
    kept_blocks, columns = [], []
    for block in blocks:
        numbers = numbers_of(table, block.field) if block.kind == NUMBER else None
        rows = block_columns(block, table, numbers)
        keep = [
            k
            for k, r in enumerate(rows)
            if min_support <= int(np.count_nonzero(in_train[r])) <= trained - min_support
        ]
        if not keep:
            continue
        if block.kind == FLAG:
            block.rules = [block.rules[k] for k in keep]
        else:
            block.cuts = [block.cuts[k] for k in keep]
        block.start = len(columns)
        columns += [position[rows[k][member[rows[k]]]].astype(np.int32) for k in keep]
        kept_blocks.append(block)
    return kept_blocks, columns
