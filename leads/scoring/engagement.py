"""Engagement that decays exactly, stored so that no job ever rewrites the table to age it.

The definition, at any instant t, for touchpoints i with points p_i at times t_i:

    engagement(t) = sum over capped groups g of min(cap_g, S_g(t))  +  S_uncapped(t)
    S_g(t)        = sum over i in g of p_i * 0.5 ** ((t - t_i) / half_life)

Every S_g(t) is S_g(a) * 0.5 ** ((t - a) / half_life) for any fixed instant a: decay multiplies
all terms by the same factor. So a lead stores one number per capped group (plus one for all
uncapped rules together), expressed at its anchor instant a (Lead.engagement_sums and
Lead.engagement_anchor_at). Reading at t is one factor and a min per group; a new touchpoint is one
term. The cap is applied when reading, never stored, because min() does not commute with decay.

Re-anchoring keeps the numbers bounded: each update moves the anchor to the update's instant
(a' = max(a, now, t_i)) and scales the sums by 0.5 ** ((a' - a) / half_life), so a sum is never
larger than the points of its recent touchpoints. An out-of-order (older) touchpoint adds
p * 0.5 ** ((a' - t_i) / half_life) without moving the anchor backwards.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leads.scoring.rules import UNCAPPED, CompiledModel

# touchpoints dated further than this after the scoring instant are not scored (touchpoint_record
# refuses anything beyond 5 minutes; this keeps a bad import from overflowing the decay factor)
FUTURE_TOLERANCE = timedelta(days=1)
# 2 ** 1000 still fits a float: a weight of a touchpoint dated after the scoring instant (at most
# FUTURE_TOLERANCE) is clamped rather than overflowing
MAX_GROWTH = 1000.0
# from this many half-lives on, 0.5 ** n is 0.0 in a float (2 ** -1074 is the smallest one above 0);
# PostgreSQL's power() raises "underflow" there instead, so the SQL tests the same limit
DECAY_ZERO_EXPONENT = 1075.0


def decay(seconds: float, half_life_seconds: float) -> float:
    exponent = max(seconds / half_life_seconds, -MAX_GROWTH)
    return 0.0 if exponent >= DECAY_ZERO_EXPONENT else 0.5**exponent


@dataclass(frozen=True)
class Anchored:
    """Per-bucket decayed sums of points, expressed at `anchor`."""

    anchor: datetime | None = None
    sums: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_lead(cls, lead: Any) -> "Anchored":
        sums = lead.engagement_sums if isinstance(lead.engagement_sums, dict) else {}
        return cls(anchor=lead.engagement_anchor_at, sums={k: float(v) for k, v in sums.items()})

    def stored_sums(self) -> dict[str, float] | None:
        """What goes into Lead.engagement_sums: no zero buckets, NULL when there is nothing."""
        kept = {k: v for k, v in self.sums.items() if v != 0}
        return kept or None


def capped_total(model: CompiledModel, sums: Mapping[str, float], factor: float = 1.0) -> float:
    total = 0.0
    for bucket, value in sums.items():
        value *= factor
        cap = None if bucket == UNCAPPED else model.group_caps.get(bucket)
        total += value if cap is None else min(cap, value)
    return total


def engagement_at(model: CompiledModel, state: Anchored, at: datetime) -> float:
    """The exact engagement at `at` (at or after the anchor): one multiplication per bucket.

    Before the anchor the sums are read as they stand at the anchor, never grown back: they may
    hold touchpoints later than `at` (growing them would overstate the score, up to 2 ** 1000).
    For an exact score at such an instant, recompute from the touchpoints (lead_score_now does)."""
    if state.anchor is None or not state.sums:
        return 0.0
    seconds = max((at - state.anchor).total_seconds(), 0.0)
    factor = decay(seconds, model.half_life_seconds)
    return capped_total(model, state.sums, factor)


def anchored_add(
    model: CompiledModel,
    state: Anchored,
    *,
    points: Mapping[str, float],
    occurred_at: datetime,
    now: datetime,
) -> Anchored:
    """`state` with one touchpoint's points (per bucket, undecayed) added, re-anchored at
    max(anchor, now, occurred_at)."""
    h = model.half_life_seconds
    anchor = max(t for t in (state.anchor, now, occurred_at) if t is not None)
    if state.anchor is None:
        sums: dict[str, float] = {}
    else:
        scale = decay((anchor - state.anchor).total_seconds(), h)
        sums = {k: v * scale for k, v in state.sums.items()}
    weight = decay((anchor - occurred_at).total_seconds(), h)
    for bucket, p in points.items():
        sums[bucket] = sums.get(bucket, 0.0) + p * weight
    return Anchored(anchor=anchor, sums=sums)


def reanchor(model: CompiledModel, state: Anchored, at: datetime) -> Anchored:
    if state.anchor is None:
        return Anchored(anchor=at, sums={})
    scale = decay((at - state.anchor).total_seconds(), model.half_life_seconds)
    return Anchored(anchor=at, sums={k: v * scale for k, v in state.sums.items()})


def anchored_from_touchpoints(
    model: CompiledModel,
    touchpoints: Iterable[tuple[str, int | None, Any, datetime]],
    *,
    at: datetime,
) -> Anchored:
    """The anchored state at `at` computed directly from (kind, campaign_id, metadata,
    occurred_at) rows: what a full rescore stores."""
    h = model.half_life_seconds
    sums: dict[str, float] = {}
    for kind, campaign_id, metadata, occurred_at in touchpoints:
        if occurred_at > at + FUTURE_TOLERANCE:
            continue
        points = model.touchpoint_points(kind, campaign_id, metadata)
        if points:
            weight = decay((at - occurred_at).total_seconds(), h)
            for bucket, p in points.items():
                sums[bucket] = sums.get(bucket, 0.0) + p * weight
    return Anchored(anchor=at, sums=sums)
