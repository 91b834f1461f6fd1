"""Real-time scoring for many leads at one instant: what `lead_score_refresh` and
`lead_score_touchpoint` compute for each lead, with the writes and the score.changed events
collected for one statement each instead of two round trips per lead.

The caller holds the rows locked and hands in what the real-time path would read (the source key,
the lead's touchpoints when the stored score came from another version); the functions of
leads.scoring do the arithmetic, so a bulk score is the one-by-one score."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leads.events import NewEvent
from leads.models import EventType, Lead
from leads.scoring.compiled import compiled_by_id, scoring_model_active
from leads.scoring.engagement import (
    Anchored,
    anchored_add,
    anchored_from_touchpoints,
    engagement_at,
)
from leads.scoring.rules import CompiledModel, _value_of, fit_total, lead_values
from leads.scoring.services import SCORING_SYSTEM, ScoreUpdate, score_judge, score_values

SCORE_ATTNAMES = (
    "fit_score",
    "engagement_score",
    "score",
    "grade",
    "engagement_sums",
    "engagement_anchor_at",
    "scored_with_id",
)

# (kind, campaign_id, metadata, occurred_at): a touchpoint as scoring reads it
TouchpointRow = tuple[str, int | None, Any, datetime]


@dataclass(frozen=True, slots=True)
class Scored:
    """A score update and its score.changed event (None when grade and eligibility stayed);
    a new lead's event gets its lead id once the row is written."""

    update: ScoreUpdate
    event: NewEvent | None


class BatchScorer:
    """One request's scoring: the active version looked up once (after the caller's lock), the
    versions that scored the leads before cached; `written` holds the leads whose score columns
    the caller must write."""

    def __init__(self, *, now: datetime):
        self.now = now
        self.model: CompiledModel | None = scoring_model_active()
        self._versions: dict[int, CompiledModel | None] = {}
        self._fit_memo: dict[tuple, bool] = {}
        self.written: set[int] = set()

    def _version(self, pk: int) -> CompiledModel | None:
        if self.model is not None and pk == self.model.id:
            return self.model
        if pk not in self._versions:
            self._versions[pk] = compiled_by_id(pk)
        return self._versions[pk]

    def stored_total(self, lead: Lead) -> float:
        """leads.scoring.services._stored_total with the versions cached."""
        if lead.scored_with_id is None:
            return lead.score
        scored_with = self._version(lead.scored_with_id)
        if scored_with is None:
            return lead.score
        return lead.fit_score + engagement_at(scored_with, Anchored.from_lead(lead), self.now)

    def needs_touchpoints(self, lead: Lead, *, refresh: bool) -> bool:
        """Whether scoring this lead now reads its touchpoints (its stored engagement came from
        another version, or never was)."""
        if self.model is None:
            return False
        if refresh:
            return lead.scored_with_id != self.model.id or lead.engagement_anchor_at is None
        return lead.scored_with_id != self.model.id

    def fit(self, lead: Lead, source_key: str | None) -> int:
        """model.fit_score, each rule's answer remembered per value for the request: a batch
        repeats titles, countries and industries."""
        model = self.model
        assert model is not None
        key = source_key if model.uses_source and lead.source_id else None
        values = lead_values(lead, source_key=key)
        matched = []
        for rule in model.fit_rules:
            actual = _value_of(values, rule.field)
            try:
                # the type too: 1, 1.0 and True are one key in a dict but not one value here
                memo = (rule.key, type(actual), actual)
                hit = self._fit_memo.get(memo)
                if hit is None:
                    hit = self._fit_memo[memo] = rule.condition.matches(actual)
            except TypeError:  # a list or an object in an attribute: not hashable
                hit = rule.condition.matches(actual)
            if hit:
                matched.append(rule)
        return fit_total(model, matched)

    def refresh(
        self, lead: Lead, *, source_key: str | None, touchpoints: Iterable[TouchpointRow] = ()
    ) -> Scored | None:
        """lead_score_refresh (not full) of a lead whose fields were just set; `touchpoints`
        are its rows when `needs_touchpoints(lead, refresh=True)`."""
        model = self.model
        if model is None:
            return None
        fit = self.fit(lead, source_key)
        if lead.scored_with_id == model.id and lead.engagement_anchor_at is not None:
            state = Anchored.from_lead(lead)
        else:
            rows = [row for row in touchpoints if row[0] in model.kinds]
            state = anchored_from_touchpoints(model, rows, at=self.now)
        return self._judge(lead, fit=fit, state=state, write=True)

    def touchpoint(
        self,
        lead: Lead,
        row: TouchpointRow,
        *,
        whole: Lead | None = None,
        source_key: str | None = None,
        touchpoints: Iterable[TouchpointRow] = (),
    ) -> Scored | None:
        """lead_score_touchpoint for one new touchpoint `row`. When `needs_touchpoints(lead,
        refresh=False)`: `whole` is the lead's full row (for the fit) and `touchpoints` all its
        rows, the new one included."""
        model = self.model
        if model is None:
            return None
        kind, campaign_id, metadata, occurred_at = row
        if lead.scored_with_id == model.id:
            points = model.touchpoint_points(kind, campaign_id, metadata)
            if not points:
                return self._judge(
                    lead, fit=lead.fit_score, state=Anchored.from_lead(lead), write=False
                )
            state = anchored_add(
                model,
                Anchored.from_lead(lead),
                points=points,
                occurred_at=occurred_at,
                now=self.now,
            )
            return self._judge(lead, fit=lead.fit_score, state=state, write=True)
        assert whole is not None
        fit = self.fit(whole, source_key)
        rows = [r for r in touchpoints if r[0] in model.kinds]
        state = anchored_from_touchpoints(model, rows, at=max(self.now, occurred_at))
        return self._judge(lead, fit=fit, state=state, write=True)

    def _judge(self, lead: Lead, *, fit: int, state: Anchored, write: bool) -> Scored:
        """leads.scoring.services._write_and_judge, the write and the event kept for later."""
        model, now = self.model, self.now
        assert model is not None
        stored = self.stored_total(lead)
        before = {
            "fit": lead.fit_score,
            "total": round(stored, 2),
            "grade": lead.grade,
            "qualifies": model.qualifies(fit=lead.fit_score, total=stored),
        }
        if write:
            for name, value in score_values(model, fit=fit, state=state).items():
                setattr(lead, name, value)
            self.written.add(lead.pk)
        update, payload = score_judge(
            lead=lead, model=model, fit=fit, state=state, now=now, before=before
        )
        event = None
        if payload is not None:
            event = NewEvent(
                type=EventType.SCORE_CHANGED,
                lead_id=lead.pk,
                occurred_at=now,
                payload=payload,
                system=SCORING_SYSTEM,
            )
        return Scored(update=update, event=event)

    @staticmethod
    def values(lead: Lead) -> list[Any]:
        return [getattr(lead, a) for a in SCORE_ATTNAMES]
