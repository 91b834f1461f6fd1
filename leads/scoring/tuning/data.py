"""What fine-tuning reads: leads with a known outcome, the moment each was decided, their values,
and their touchpoints. A fixed handful of set-based queries, never one per lead.

The moment that counts (`cutoff`) is when the score mattered: the lead's last entry into MQL
before the outcome when it had one (that is when the score sent it to sales), otherwise the
outcome itself. Touchpoints after it are never read, so what sales did to the lead cannot leak into
the score that was supposed to predict it. Fields and attributes are the lead's current values:
the history of a field is not kept.

Memory stays bounded at a million leads: every query is streamed (`iterator(chunk_size=...)`, a
server-side cursor on PostgreSQL), the lead values share their repeated strings, and touchpoints
are read by batches of lead ids into numpy arrays (`touches`).
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
from django.db.models import Q, QuerySet
from django.db.models.functions import Mod

from leads.models import Lead, Stage, StageChange
from leads.scoring.rules import NUMBER_FIELDS, TEXT_FIELDS, ScoringError, lead_values

OUTCOME_WON = "won"
OUTCOME_ACCEPTED = "accepted"
OUTCOMES = (OUTCOME_WON, OUTCOME_ACCEPTED)
OUTCOME_WORDS = {
    OUTCOME_WON: ("won", "lost"),
    OUTCOME_ACCEPTED: ("accepted by sales", "rejected or recycled by sales"),
}
# fine-tuning and the draft preview need at least this many leads of each outcome
MIN_OUTCOMES = 50
LEAD_COLUMNS = tuple(sorted(TEXT_FIELDS | NUMBER_FIELDS))
DECISIONS = (Stage.SAL, Stage.REJECTED, Stage.RECYCLED)

# rows fetched from the database at a time
CHUNK_ROWS = 5_000
# these hold a value of their own per lead: sharing them saves nothing (names, companies and
# websites do repeat)
UNSHARED_FIELDS = frozenset({"email", "phone"})
SHARED_MAX_LENGTH = 200
SHARED_MAX_VALUES = 200_000
# the recent leads are read as a sample of about this many beyond it (every k-th id): they give
# only shares (who would qualify, the grades), which a sample this size knows to a few tenths of
# a percent, and at a million leads all of them would hold a third of the leads in memory
RECENT_SAMPLE = 50_000


class TuningError(ScoringError):
    """Fine-tuning cannot propose a version; the message says why. Nothing was created."""


@dataclass
class LeadSet:
    """Leads in id order: their values (as fit rules read them) and, where known, the outcome
    (1 positive, 0 negative, -1 none yet) and the moment that counts."""

    ids: np.ndarray
    leads: list[dict]
    label: np.ndarray
    cutoff: list[datetime]
    was_mql: np.ndarray | None = None
    # recent leads: how many there are in all (the set may be a sample of them)
    arrived: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def counts(self) -> tuple[int, int]:
        """How many leads reached the outcome, and how many did not."""
        positives = int(np.count_nonzero(self.label == 1))
        return positives, int(np.count_nonzero(self.label == 0))

    def too_few(self, outcome: str) -> str | None:
        """None when there are MIN_OUTCOMES leads of each outcome, else the counts in words."""
        positives, negatives = self.counts()
        if positives >= MIN_OUTCOMES and negatives >= MIN_OUTCOMES:
            return None
        yes, no = OUTCOME_WORDS[outcome]
        return f"{positives} leads {yes} and {negatives} {no}"


class _Shared:
    """One string object per repeated value (an industry, a country, an attribute's name): a
    million lead dicts would otherwise each hold their own copies."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if type(value) is not str or len(value) > SHARED_MAX_LENGTH:
            return value
        shared = self.values.get(value)
        if shared is not None:
            return shared
        if len(self.values) < SHARED_MAX_VALUES:
            self.values[value] = value
        return value


class _LeadValues:
    """An empty holder: the attribute dicts of its instances share one table of keys (PEP 412)."""


def _key_sharing(values: dict) -> dict:
    """The same dict, as one whose keys live in a table all the leads' dicts share: a lead's
    values then cost about half (every lead has the same keys, in the same order). Still a plain
    dict to its readers."""
    holder = _LeadValues()
    for name, value in values.items():
        setattr(holder, name, value)
    return holder.__dict__


def _values(row: tuple, offset: int, shared: _Shared) -> dict:
    fields = {
        name: value if name in UNSHARED_FIELDS else shared(value)
        for name, value in zip(LEAD_COLUMNS, row[offset : offset + len(LEAD_COLUMNS)], strict=True)
    }
    attributes, source_key = row[offset + len(LEAD_COLUMNS)], row[offset + len(LEAD_COLUMNS) + 1]
    if isinstance(attributes, dict):
        attributes = {shared(k): shared(v) for k, v in attributes.items()}
    return _key_sharing(
        lead_values(SimpleNamespace(**fields, attributes=attributes), source_key=shared(source_key))
    )


def _value_columns() -> tuple[str, ...]:
    return (*LEAD_COLUMNS, "attributes", "source__key")


def _decided() -> QuerySet:
    return StageChange.objects.filter(from_stage=Stage.MQL, to_stage__in=DECISIONS)


def _decisions(changes: QuerySet) -> dict[int, tuple[str, datetime]]:
    """Per lead, sales' latest decision on it as an MQL (accepted, rejected or recycled)."""
    latest: dict[int, tuple[str, datetime]] = {}
    for lead_id, to_stage, at in (
        changes.order_by("lead_id", "at", "id")
        .values_list("lead_id", "to_stage", "at")
        .iterator(chunk_size=CHUNK_ROWS)
    ):
        latest[lead_id] = (to_stage, at)
    return latest


def _mql_entries(lead_ids: Iterable[int]) -> dict[int, list[datetime]]:
    """Every entry into MQL of the given leads, in time order. One scan of the entries into MQL
    (indexed by stage), filtered here: no IN-list, no correlated subquery."""
    wanted = set(lead_ids)
    entries: dict[int, list[datetime]] = defaultdict(list)
    for lead_id, at in (
        StageChange.objects.filter(to_stage=Stage.MQL)
        .order_by("lead_id", "at", "id")
        .values_list("lead_id", "at")
        .iterator(chunk_size=CHUNK_ROWS)
    ):
        if lead_id in wanted:
            entries[lead_id].append(at)
    return entries


def _won_outcome(stage: str, won_at, lost_at, changed_at) -> tuple[int, datetime | None]:
    if stage == Stage.WON or won_at is not None:
        return 1, won_at or changed_at
    if stage == Stage.LOST or lost_at is not None:
        return 0, lost_at or changed_at
    return -1, None


def labeled_queryset(outcome: str) -> QuerySet:
    if outcome == OUTCOME_WON:
        return Lead.objects.filter(
            Q(stage__in=(Stage.WON, Stage.LOST))
            | Q(won_at__isnull=False)
            | Q(lost_at__isnull=False)
        )
    return Lead.objects.filter(pk__in=_decided().values("lead_id"))


def labeled_leads(outcome: str) -> LeadSet:
    """Every lead with a known outcome: `won` (won vs lost) or `accepted` (sales accepted the MQL
    vs rejected or recycled it; a lead decided twice counts by its latest decision)."""
    qs = labeled_queryset(outcome).order_by("pk")
    shared = _Shared()
    ids, leads, labels, cutoffs = [], [], [], []
    if outcome == OUTCOME_WON:
        for row in qs.values_list(
            "pk", "stage", "won_at", "lost_at", "mql_at", "stage_changed_at", *_value_columns()
        ).iterator(chunk_size=CHUNK_ROWS):
            label, decided_at = _won_outcome(*row[1:4], row[5])
            if label < 0:
                continue
            mql_at = row[4]
            ids.append(row[0])
            labels.append(label)
            cutoffs.append(mql_at if mql_at is not None and mql_at <= decided_at else decided_at)
            leads.append(_values(row, 6, shared))
    else:
        decisions = _decisions(_decided())
        entries = _mql_entries(decisions)
        for row in qs.values_list("pk", *_value_columns()).iterator(chunk_size=CHUNK_ROWS):
            to_stage, decided_at = decisions[row[0]]
            before = [at for at in entries.get(row[0], ()) if at <= decided_at]
            ids.append(row[0])
            labels.append(1 if to_stage == Stage.SAL else 0)
            cutoffs.append(before[-1] if before else decided_at)
            leads.append(_values(row, 1, shared))
        del decisions, entries
    return LeadSet(
        ids=np.array(ids, dtype=np.int64),
        leads=leads,
        label=np.array(labels, dtype=np.int8),
        cutoff=cutoffs,
    )


def arrivals(since: datetime) -> int:
    """How many leads were created since `since` (one count, by the created-at index)."""
    return Lead.objects.filter(created_at__gte=since).count()


def recent_leads(
    outcome: str, *, since: datetime, now: datetime, sample: int = RECENT_SAMPLE
) -> LeadSet:
    """Leads created since `since`, or every k-th of them by id when there are more than
    `sample` (`arrived` says how many there are in all): their outcome so far, the end of the
    period in which the score could have made them an MQL (their outcome, or now), and whether
    they became MQLs in fact."""
    arrived = arrivals(since)
    qs = Lead.objects.filter(created_at__gte=since)
    decided = _decided().filter(lead__created_at__gte=since)
    step = max(1, math.ceil(arrived / sample)) if sample else 1
    if step > 1:
        qs = qs.alias(bucket=Mod("pk", step)).filter(bucket=0)
        decided = decided.alias(bucket=Mod("lead_id", step)).filter(bucket=0)
    decisions = _decisions(decided) if outcome == OUTCOME_ACCEPTED else {}
    shared = _Shared()
    ids, leads, labels, ends, was_mql = [], [], [], [], []
    for row in (
        qs.order_by("pk")
        .values_list(
            "pk",
            "stage",
            "won_at",
            "lost_at",
            "stage_changed_at",
            "first_mql_at",
            *_value_columns(),
        )
        .iterator(chunk_size=CHUNK_ROWS)
    ):
        if outcome == OUTCOME_WON:
            label, decided_at = _won_outcome(*row[1:5])
        elif row[0] in decisions:
            to_stage, decided_at = decisions[row[0]]
            label = 1 if to_stage == Stage.SAL else 0
        else:
            label, decided_at = -1, None
        ids.append(row[0])
        labels.append(label)
        ends.append(min(decided_at, now) if decided_at is not None else now)
        was_mql.append(row[5] is not None)
        leads.append(_values(row, 6, shared))
    return LeadSet(
        ids=np.array(ids, dtype=np.int64),
        leads=leads,
        label=np.array(labels, dtype=np.int8),
        cutoff=ends,
        was_mql=np.array(was_mql, dtype=bool),
        arrived=arrived,
    )
