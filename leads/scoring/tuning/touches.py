"""The touchpoints fine-tuning reads, kept compact: numpy arrays in compressed-row layout (a few
bytes per touchpoint instead of a tuple of Python objects), read by batches of lead ids, and the
decayed counts per lead and kind that engagement rules are learned from.
"""

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db import connections
from django.db.models import QuerySet

from leads.models import Touchpoint
from leads.scoring.tuning import data

Touch = tuple[str, int | None, Any, datetime]  # kind, campaign id, metadata, occurred_at

# leads whose touchpoints one query reads (an IN-list of their ids: bounded, and served by the
# (lead, occurred_at) index)
LEAD_BATCH = 5_000
# leads whose decayed counts one vectorised step computes (bounds its temporary arrays)
DECAY_BATCH = 100_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NO_CAMPAIGN = -1


def micros(at: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (exact, no float)."""
    return (at - EPOCH) // MICROSECOND


def micros_array(moments: Iterable[datetime]) -> np.ndarray:
    return np.fromiter((micros(at) for at in moments), dtype=np.int64)


class Touchpoints(Mapping):
    """The touchpoints of a set of leads, per row index, in time order (occurred_at, then id), in
    compressed-row layout: the touchpoints of row i are positions offsets[i]:offsets[i + 1] of
    `kind` (codes into `kinds`), `campaign` (NO_CAMPAIGN for none) and `at` (microseconds since
    the epoch, UTC); `metadata` (one object per touchpoint) only when it was read.

    As a mapping it reads like the dict of lists it replaces: row -> list of (kind, campaign id,
    metadata, occurred_at) tuples, built when asked for, for the rows that have touchpoints, in
    row order."""

    def __init__(
        self,
        *,
        offsets: np.ndarray,
        kinds: Iterable[str],
        kind: np.ndarray,
        campaign: np.ndarray,
        at: np.ndarray,
        metadata: list | None = None,
    ) -> None:
        self.offsets = offsets
        self.kinds = tuple(kinds)
        self.kind = kind
        self.campaign = campaign
        self.at = at
        self.metadata = metadata
        self._rows: np.ndarray | None = None
        self._masks: dict[frozenset, np.ndarray] = {}

    @classmethod
    def empty(cls, size: int, kinds: Iterable[str] = ()) -> "Touchpoints":
        return cls(
            offsets=np.zeros(size + 1, dtype=np.int64),
            kinds=kinds,
            kind=np.zeros(0, dtype=np.int8),
            campaign=np.zeros(0, dtype=np.int64),
            at=np.zeros(0, dtype=np.int64),
        )

    @classmethod
    def from_mapping(cls, touches: Mapping[int, list[Touch]], size: int) -> "Touchpoints":
        """The compact form of a plain {row: [touch, ...]} mapping (each list in time order)."""
        counts = np.zeros(size, dtype=np.int64)
        for i, items in touches.items():
            counts[i] = len(items)
        ordered = [t for i in range(size) for t in touches.get(i, ())]
        kinds = sorted({t[0] for t in ordered})
        code = {k: c for c, k in enumerate(kinds)}
        return cls(
            offsets=np.r_[0, np.cumsum(counts)].astype(np.int64),
            kinds=kinds,
            kind=np.array([code[t[0]] for t in ordered], dtype=np.int8),
            campaign=np.array(
                [NO_CAMPAIGN if t[1] is None else t[1] for t in ordered], dtype=np.int64
            ),
            at=np.array([micros(t[3]) for t in ordered], dtype=np.int64),
            metadata=[t[2] for t in ordered],
        )

    @property
    def size(self) -> int:
        """How many rows (leads) there are, with touchpoints or not."""
        return len(self.offsets) - 1

    @property
    def total(self) -> int:
        """How many touchpoints there are."""
        return int(self.offsets[-1])

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def rows(self) -> np.ndarray:
        """The rows that have touchpoints, in order."""
        if self._rows is None:
            self._rows = np.flatnonzero(self.counts())
        return self._rows

    def row_of_touch(self) -> np.ndarray:
        """Each touchpoint's row."""
        return np.repeat(np.arange(self.size, dtype=np.int64), self.counts())

    def _span(self, i: Any) -> tuple[int, int]:
        try:
            i = int(i)
        except (TypeError, ValueError):
            raise KeyError(i) from None
        if not 0 <= i < self.size:
            raise KeyError(i)
        return int(self.offsets[i]), int(self.offsets[i + 1])

    def tuples(self, positions: np.ndarray | range) -> list[Touch]:
        """The touchpoints at these positions as (kind, campaign id, metadata, occurred_at)."""
        kinds, metadata = self.kinds, self.metadata
        if isinstance(positions, range):
            chosen = slice(positions.start, positions.stop)
            places = positions
        else:
            chosen = positions
            places = positions.tolist()
        return [
            (
                kinds[k],
                None if c == NO_CAMPAIGN else c,
                metadata[p] if metadata is not None else {},
                EPOCH + timedelta(microseconds=a),
            )
            for p, k, c, a in zip(
                places,
                self.kind[chosen].tolist(),
                self.campaign[chosen].tolist(),
                self.at[chosen].tolist(),
                strict=True,
            )
        ]

    def _kind_mask(self, kinds: Iterable[str]) -> np.ndarray:
        key = frozenset(kinds)
        mask = self._masks.get(key)
        if mask is None:
            codes = [c for c, k in enumerate(self.kinds) if k in key]
            mask = self._masks[key] = np.isin(self.kind, np.array(codes, dtype=np.int8))
        return mask

    def until(self, i: int, at: datetime, *, kinds: Iterable[str] | None = None) -> list[Touch]:
        """Row i's touchpoints up to `at` (included), of `kinds` only when given, in time order;
        [] when there are none."""
        start, stop = self._span(i)
        if start == stop:
            return []
        stop = start + int(np.searchsorted(self.at[start:stop], micros(at), side="right"))
        if kinds is None:
            return self.tuples(range(start, stop))
        return self.tuples(start + np.flatnonzero(self._kind_mask(kinds)[start:stop]))

    def __getitem__(self, i: Any) -> list[Touch]:
        start, stop = self._span(i)
        if start == stop:
            raise KeyError(i)
        return self.tuples(range(start, stop))

    def __contains__(self, i: object) -> bool:
        try:
            start, stop = self._span(i)
        except KeyError:
            return False
        return stop > start

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows().tolist())

    def __len__(self) -> int:
        return len(self.rows())


def touchpoints(
    leads: QuerySet, lead_ids: np.ndarray, *, kinds: Iterable[str], with_metadata: bool
) -> Touchpoints:
    """The touchpoints of the given kinds of the leads `lead_ids` (read from `leads`), per row
    index of `lead_ids`, in time order. Read by batches of LEAD_BATCH lead ids (the batch's ids
    stand for `leads`' filter, which is not repeated per batch), streamed CHUNK_ROWS rows at a
    time into numpy arrays; metadata is read only when a rule looks at it."""
    kinds = sorted(set(kinds))
    size = len(lead_ids)
    if not kinds or not size:
        return Touchpoints.empty(size, kinds)
    code = {k: c for c, k in enumerate(kinds)}
    ids = np.asarray(lead_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    columns = ["lead_id", "kind", "campaign_id", "occurred_at"]
    if with_metadata:
        columns.append("metadata")
    rows, kind, campaign, at = [], [], [], []
    metadata: list | None = [] if with_metadata else None
    # SQLite as Django knows it takes at most 999 parameters a query
    limit = connections[Touchpoint.objects.db].features.max_query_params
    step = LEAD_BATCH if limit is None else max(1, min(LEAD_BATCH, limit - len(kinds)))
    for start in range(0, size, step):
        batch = sorted_ids[start : start + step]
        qs = (
            Touchpoint.objects.filter(lead_id__in=batch.tolist(), kind__in=kinds)
            .order_by("lead_id", "occurred_at", "id")
            .values_list(*columns)
            .iterator(chunk_size=data.CHUNK_ROWS)
        )
        lead, k, c, a = [], [], [], []
        for row in qs:
            lead.append(row[0])
            k.append(code[row[1]])
            c.append(NO_CAMPAIGN if row[2] is None else row[2])
            a.append((row[3] - EPOCH) // MICROSECOND)
            if metadata is not None:
                metadata.append(row[4])
        if not lead:
            continue
        rows.append(order[start + np.searchsorted(batch, np.array(lead, dtype=np.int64))])
        kind.append(np.array(k, dtype=np.int8))
        campaign.append(np.array(c, dtype=np.int64))
        at.append(np.array(a, dtype=np.int64))
    if not rows:
        return Touchpoints.empty(size, kinds)
    row = np.concatenate(rows)
    touches = Touchpoints(
        offsets=np.r_[0, np.cumsum(np.bincount(row, minlength=size))].astype(np.int64),
        kinds=kinds,
        kind=np.concatenate(kind),
        campaign=np.concatenate(campaign),
        at=np.concatenate(at),
        metadata=metadata,
    )
    if np.any(row[1:] < row[:-1]):
        # lead_ids not in id order: regroup by row, each row's own time order kept
        regroup = np.argsort(row, kind="stable")
        touches.kind = touches.kind[regroup]
        touches.campaign = touches.campaign[regroup]
        touches.at = touches.at[regroup]
        if metadata is not None:
            touches.metadata = [metadata[p] for p in regroup.tolist()]
    return touches


def decayed_counts(
    touches: Touchpoints | Mapping[int, list[Touch]],
    cutoffs: list[datetime],
    kinds: list[str],
    *,
    half_life_days: float,
) -> np.ndarray:
    """Per lead and kind: the touchpoints up to the lead's cutoff, each weighted by the decay the
    score applies at that moment (0.5 ** (age / half-life)). A rule's points times this number is
    exactly what the rule added to the lead's engagement then. Vectorised over the arrays, by
    blocks of DECAY_BATCH leads (a lead's touchpoints never straddle two blocks, so each sum is
    added up in time order, as one loop over the touchpoints would)."""
    n, width = len(cutoffs), len(kinds)
    out = np.zeros((n, width))
    if not isinstance(touches, Touchpoints):
        touches = Touchpoints.from_mapping(touches, size=n)
    if not width or not touches.total:
        return out
    index = {k: j for j, k in enumerate(kinds)}
    column = np.array([index.get(k, -1) for k in touches.kinds], dtype=np.int64)
    cut = micros_array(cutoffs)
    half_life_seconds = half_life_days * 86400.0
    offsets = touches.offsets
    for first in range(0, min(n, touches.size), DECAY_BATCH):
        last = min(first + DECAY_BATCH, n, touches.size)
        start, stop = int(offsets[first]), int(offsets[last])
        if start == stop:
            continue
        row = np.repeat(np.arange(last - first, dtype=np.int64), np.diff(offsets[first : last + 1]))
        col = column[touches.kind[start:stop]]
        age = cut[first + row] - touches.at[start:stop]
        keep = (col >= 0) & (age >= 0)
        # seconds first, as timedelta.total_seconds() gives them: the same floats as a plain loop
        weights = 0.5 ** ((age[keep] / 1e6) / half_life_seconds)
        out[first:last] = np.bincount(
            row[keep] * width + col[keep], weights=weights, minlength=(last - first) * width
        ).reshape(last - first, width)
    return out
