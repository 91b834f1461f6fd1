"""What fine-tuning reads: leads with a known outcome, the moment each was decided, their values,
and their touchpoints. A fixed handful of set-based queries, never one per lead.

The moment that counts (`cutoff`) is when the score mattered: the lead's last entry into MQL
before the outcome when it had one (that is when the score sent it to sales), otherwise the
outcome itself. Touchpoints after it are never read, so what sales did to the lead cannot leak into
the score that was supposed to predict it. Fields and attributes are the lead's current values:
the history of a field is not kept.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
from django.db.models import Q, QuerySet

from leads.models import Lead, Stage, StageChange, Touchpoint
from leads.scoring.rules import NUMBER_FIELDS, TEXT_FIELDS, lead_values

OUTCOME_WON = "won"
OUTCOME_ACCEPTED = "accepted"
OUTCOMES = (OUTCOME_WON, OUTCOME_ACCEPTED)
OUTCOME_WORDS = {
    OUTCOME_WON: ("won", "lost"),
    OUTCOME_ACCEPTED: ("accepted by sales", "rejected or recycled by sales"),
}
LEAD_COLUMNS = tuple(sorted(TEXT_FIELDS | NUMBER_FIELDS))
DECISIONS = (Stage.SAL, Stage.REJECTED, Stage.RECYCLED)

Touch = tuple[str, int | None, Any, datetime]  # kind, campaign id, metadata, occurred_at


@dataclass
class LeadSet:
    """Leads in id order: their values (as fit rules read them) and, where known, the outcome
    (1 positive, 0 negative, -1 none yet) and the moment that counts."""

    ids: np.ndarray
    leads: list[dict]
    label: np.ndarray
    cutoff: list[datetime]
    created_at: list[datetime] = field(default_factory=list)
    was_mql: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def _values(row: tuple, offset: int) -> dict:
    fields = dict(zip(LEAD_COLUMNS, row[offset : offset + len(LEAD_COLUMNS)], strict=True))
    attributes, source_key = row[offset + len(LEAD_COLUMNS)], row[offset + len(LEAD_COLUMNS) + 1]
    return lead_values(SimpleNamespace(**fields, attributes=attributes), source_key=source_key)


def _value_columns() -> tuple[str, ...]:
    return (*LEAD_COLUMNS, "attributes", "source__key")


def _decided() -> QuerySet:
    return StageChange.objects.filter(from_stage=Stage.MQL, to_stage__in=DECISIONS)


def _decisions(changes: QuerySet) -> dict[int, tuple[str, datetime]]:
    """Per lead, sales' latest decision on it as an MQL (accepted, rejected or recycled)."""
    latest: dict[int, tuple[str, datetime]] = {}
    for lead_id, to_stage, at in changes.order_by("lead_id", "at", "id").values_list(
        "lead_id", "to_stage", "at"
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
    ids, leads, labels, cutoffs = [], [], [], []
    if outcome == OUTCOME_WON:
        for row in qs.values_list(
            "pk", "stage", "won_at", "lost_at", "mql_at", "stage_changed_at", *_value_columns()
        ):
            label, decided_at = _won_outcome(*row[1:4], row[5])
            if label < 0:
                continue
            mql_at = row[4]
            ids.append(row[0])
            labels.append(label)
            cutoffs.append(mql_at if mql_at is not None and mql_at <= decided_at else decided_at)
            leads.append(_values(row, 6))
    else:
        decisions = _decisions(_decided())
        entries = _mql_entries(decisions)
        for row in qs.values_list("pk", *_value_columns()):
            to_stage, decided_at = decisions[row[0]]
            before = [at for at in entries.get(row[0], ()) if at <= decided_at]
            ids.append(row[0])
            labels.append(1 if to_stage == Stage.SAL else 0)
            cutoffs.append(before[-1] if before else decided_at)
            leads.append(_values(row, 1))
    return LeadSet(
        ids=np.array(ids, dtype=np.int64),
        leads=leads,
        label=np.array(labels, dtype=np.int8),
        cutoff=cutoffs,
    )


def recent_leads(outcome: str, *, since: datetime, now: datetime) -> LeadSet:
    """Leads created since `since` (the backtest): their outcome so far, the end of the period in
    which the score could have made them an MQL (their outcome, or now), and whether they became
    MQLs in fact."""
    qs = Lead.objects.filter(created_at__gte=since).order_by("pk")
    decisions = (
        _decisions(_decided().filter(lead__created_at__gte=since))
        if outcome == OUTCOME_ACCEPTED
        else {}
    )
    ids, leads, labels, ends, created, was_mql = [], [], [], [], [], []
    for row in qs.values_list(
        "pk",
        "stage",
        "won_at",
        "lost_at",
        "stage_changed_at",
        "created_at",
        "first_mql_at",
        *_value_columns(),
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
        created.append(row[5])
        was_mql.append(row[6] is not None)
        leads.append(_values(row, 7))
    return LeadSet(
        ids=np.array(ids, dtype=np.int64),
        leads=leads,
        label=np.array(labels, dtype=np.int8),
        cutoff=ends,
        created_at=created,
        was_mql=np.array(was_mql, dtype=bool),
    )


def touchpoints(
    leads: QuerySet, lead_ids: np.ndarray, *, kinds: Iterable[str], with_metadata: bool
) -> dict[int, list[Touch]]:
    """The touchpoints of the given kinds of the leads `leads` selects, per row index of
    `lead_ids`, in time order. One query; metadata is read only when a rule looks at it."""
    kinds = sorted(set(kinds))
    by_lead: dict[int, list[Touch]] = defaultdict(list)
    if not kinds or not len(lead_ids):
        return by_lead
    position = {int(pk): i for i, pk in enumerate(lead_ids)}
    columns = (
        "lead_id",
        "kind",
        "campaign_id",
        "metadata" if with_metadata else "id",
        "occurred_at",
    )
    qs = Touchpoint.objects.filter(lead_id__in=leads.values("pk"), kind__in=kinds).order_by(
        "occurred_at", "id"
    )
    for lead_id, kind, campaign_id, metadata, occurred_at in qs.values_list(*columns):
        i = position.get(lead_id)
        if i is not None:
            by_lead[i].append((kind, campaign_id, metadata if with_metadata else {}, occurred_at))
    return by_lead


def decayed_counts(
    touches: dict[int, list[Touch]],
    cutoffs: list[datetime],
    kinds: list[str],
    *,
    half_life_days: float,
) -> np.ndarray:
    """Per lead and kind: the touchpoints up to the lead's cutoff, each weighted by the decay the
    score applies at that moment (0.5 ** (age / half-life)). A rule's points times this number is
    exactly what the rule added to the lead's engagement then."""
    out = np.zeros((len(cutoffs), len(kinds)))
    column = {k: j for j, k in enumerate(kinds)}
    rows, cols, ages = [], [], []
    for i, items in touches.items():
        cut = cutoffs[i]
        for kind, _campaign, _metadata, at in items:
            j = column.get(kind)
            if j is not None and at <= cut:
                rows.append(i)
                cols.append(j)
                ages.append((cut - at).total_seconds())
    if rows:
        weights = 0.5 ** (np.array(ages) / (half_life_days * 86400.0))
        np.add.at(out, (np.array(rows), np.array(cols)), weights)
    return out
