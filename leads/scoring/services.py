"""Every write of the scoring service: versions and their sign-off, the real-time score update,
full rescoring and score history.

Decisions worth knowing:
- Versions move draft -> proposed -> active -> retired (a proposal can go back to draft: withdrawn
  by marketing or sent back by a manager, its approvals dropped). Only drafts are edited; a proposed
  version is frozen, so both managers approve exactly what will run. A version becomes active when a
  marketing manager and a sales manager have both approved it (one approval per side, per person);
  admins cannot approve. Activation retires the previous version and queues a full rescore.
- Real time: a touchpoint or a field change updates the lead's score in the caller's transaction,
  with the lead row locked by the caller (so two concurrent touchpoints both count: the second
  waits and applies on top of the first). A lead is scored with the version that scored it until
  the activation rescore reaches it (a process remembers the active version for at most a minute,
  see leads.scoring.compiled.active_for); a lead scored by another version, or never, is
  recomputed from its touchpoints.
- Scoring never moves a stage: it returns a ScoreUpdate saying whether the lead now crosses into
  MQL, and the lifecycle service (leads.services) makes the move, which routes the lead. It records
  a `score.changed` event only when the grade or the MQL eligibility changes.
- MQL crossings happen on events (a touchpoint, a field change, a new lead, the activation of a
  new version), never by decay. At an event the lead crosses when it meets the definition
  afterwards, is in new, nurturing or recycled, and either did not meet it just before the event
  or has never been an MQL (`crosses_into_mql`). So a lead that sales recycled must fall below the
  line and rise again. lead_move refuses mql -> mql, and the row lock serialises events, so one
  crossing makes one move.
- Score history: a ScoreSnapshot with the full explanation at every MQL transition (any cause), and,
  when a new version is activated, one per lead whose fit, grade or total (by >= 0.5) changed, with
  the values before and after, written set-based by the rescore batches.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from alignment import signoff
from alignment.models import User
from alignment.permissions import Action, require
from leads.conditions import SqlParams
from leads.events import event_record
from leads.models import Campaign, EventType, Lead, Source, Stage, Touchpoint
from leads.scoring import sql as scoring_sql
from leads.scoring.compiled import (
    active_for,
    compiled_by_id,
    compiled_model,
    scoring_model_active,
)
from leads.scoring.engagement import (
    Anchored,
    anchored_add,
    anchored_from_touchpoints,
    capped_total,
    engagement_at,
)
from leads.scoring.models import (
    ModelAction,
    ModelOrigin,
    ModelStatus,
    RunKind,
    RunStatus,
    ScoreSnapshot,
    ScoringApproval,
    ScoringModel,
    ScoringModelEvent,
    ScoringRun,
    SnapshotKind,
)
from leads.scoring.rules import (
    CompiledModel,
    ScoringError,
    engagement_rule_label,
    lead_values,
    spec_diff,
    spec_of,
    validate_spec,
)
from leads.scoring.selectors import lead_score_explain

logger = logging.getLogger(__name__)

SCORING_SYSTEM = "scoring"
PRE_MQL_STAGES = (Stage.NEW, Stage.NURTURING, Stage.RECYCLED)
DEFAULT_BATCH_SIZE = 5000
# a running rescore whose heartbeat is older than this was lost (worker died): it may be resumed
RUN_STALE_AFTER = timedelta(minutes=10)

MODEL_MOVES = signoff.MOVES
APPROVING_SIDES = signoff.APPROVING_SIDES


# The hot path (every touchpoint) locks the lead and reads what the pipeline and the score need
# with one plain statement, and writes the score columns with another: the ORM's query compilation
# would cost more than the database work itself.
_LOCK_SQL = (
    "SELECT id, stage, owner_id, mql_at, mql_count, first_sales_touch_at, fit_score, "
    "engagement_score, score, grade, engagement_sums, engagement_anchor_at, scored_with_id "
    "FROM leads_lead WHERE id = %s"
)
_WRITE_SQL = (
    "UPDATE leads_lead SET fit_score = %s, engagement_score = %s, score = %s, grade = %s, "
    "engagement_sums = %s, engagement_anchor_at = %s, scored_with_id = %s WHERE id = %s"
)


def lead_lock_for_scoring(lead_id: int) -> Lead:
    """The lead's stage, owner and score columns, its row locked (the other fields are deferred).
    What touchpoint_record needs, in one round trip."""
    sql = _LOCK_SQL + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    locked = next(iter(Lead.objects.raw(sql, [lead_id])), None)
    if locked is None:
        raise Lead.DoesNotExist(f"Lead {lead_id} does not exist.")
    return locked


def _write_scores(lead_id: int, values: dict[str, Any]) -> None:
    ops = connection.ops
    sums = values["engagement_sums"]
    with connection.cursor() as cursor:
        cursor.execute(
            _WRITE_SQL,
            [
                values["fit_score"],
                values["engagement_score"],
                values["score"],
                values["grade"],
                None if sums is None else json.dumps(sums),
                ops.adapt_datetimefield_value(values["engagement_anchor_at"]),
                values["scored_with_id"],
                lead_id,
            ],
        )


@dataclass
class ScoreUpdate:
    """What a score update changed. `crosses`: the lead now meets the MQL definition and should
    become an MQL; the caller makes that move through the lifecycle service."""

    lead: Lead
    model: CompiledModel
    fit: int
    engagement: float  # at `at`
    total: float
    grade: str
    at: datetime
    qualifies: bool
    qualified_before: bool
    crosses: bool


def _touchpoint_rows(lead_id: int, model: CompiledModel) -> list[tuple]:
    if not model.kinds:
        return []
    return list(
        Touchpoint.objects.filter(lead_id=lead_id, kind__in=model.kinds)
        .order_by()
        .values_list("kind", "campaign_id", "metadata", "occurred_at")
    )


def _fit_of(lead: Lead, model: CompiledModel) -> int:
    source_key = None
    if model.uses_source and lead.source_id:
        source_key = Source.objects.filter(pk=lead.source_id).values_list("key", flat=True).first()
    return model.fit_score(lead_values(lead, source_key=source_key))


def _stored_total(locked: Lead, model: CompiledModel, now: datetime) -> float:
    """The stored total aged to `now` by the version that computed it."""
    if locked.scored_with_id is None:
        return locked.score
    scored_with = (
        model if locked.scored_with_id == model.id else compiled_by_id(locked.scored_with_id)
    )
    if scored_with is None:
        return locked.score
    return locked.fit_score + engagement_at(scored_with, Anchored.from_lead(locked), now)


def _qualified_before(locked: Lead, model: CompiledModel, now: datetime) -> bool:
    """Whether the stored score meets the active MQL definition."""
    return model.qualifies(fit=locked.fit_score, total=_stored_total(locked, model, now))


def crosses_into_mql(
    *, stage: str, mql_count: int, qualified_before: bool, qualifies: bool
) -> bool:
    """The one crossing rule (see the module docstring)."""
    return qualifies and stage in PRE_MQL_STAGES and (not qualified_before or mql_count == 0)


def score_values(model: CompiledModel, *, fit: int, state: Anchored) -> dict[str, Any]:
    """The lead columns a score is stored in (the engagement as of its anchor)."""
    engagement_at_anchor = capped_total(model, state.sums) if state.anchor else 0.0
    return {
        "fit_score": fit,
        "engagement_score": engagement_at_anchor,
        "score": fit + engagement_at_anchor,
        "grade": model.grade(fit),
        "engagement_sums": state.stored_sums(),
        "engagement_anchor_at": state.anchor,
        "scored_with_id": model.id,
    }


def score_judge(
    *,
    lead: Lead,
    model: CompiledModel,
    fit: int,
    state: Anchored,
    now: datetime,
    before: dict[str, Any],
) -> tuple[ScoreUpdate, dict | None]:
    """What the new score means for `lead` (whose `before` is its stored score, read before any
    write): the update, and the `score.changed` payload when the grade or the MQL eligibility
    changed (a decay tick or a point more is no event), else None. Writes nothing."""
    engagement = engagement_at(model, state, now)
    total = fit + engagement
    qualifies = model.qualifies(fit=fit, total=total)
    grade = model.grade(fit)
    qualified_before = before["qualifies"]
    payload = None
    if grade != before["grade"] or qualifies != qualified_before:
        payload = {
            "model_id": model.id,
            "before": before,
            "after": {"fit": fit, "total": round(total, 2), "grade": grade, "qualifies": qualifies},
        }
    update = ScoreUpdate(
        lead=lead,
        model=model,
        fit=fit,
        engagement=engagement,
        total=total,
        grade=grade,
        at=now,
        qualifies=qualifies,
        qualified_before=qualified_before,
        crosses=crosses_into_mql(
            stage=lead.stage,
            mql_count=lead.mql_count,
            qualified_before=qualified_before,
            qualifies=qualifies,
        ),
    )
    return update, payload


def _write_and_judge(
    *,
    locked: Lead,
    model: CompiledModel,
    fit: int,
    state: Anchored,
    now: datetime,
    qualified_before: bool,
    write: bool = True,
) -> ScoreUpdate:
    before = {
        "fit": locked.fit_score,
        "total": round(_stored_total(locked, model, now), 2),
        "grade": locked.grade,
        "qualifies": qualified_before,
    }
    if write:
        values = score_values(model, fit=fit, state=state)
        _write_scores(locked.pk, values)
        for name, value in values.items():
            setattr(locked, name, value)
    update, payload = score_judge(
        lead=locked, model=model, fit=fit, state=state, now=now, before=before
    )
    if payload is not None:
        event_record(
            type=EventType.SCORE_CHANGED,
            lead=locked,
            system=SCORING_SYSTEM,
            at=now,
            payload=payload,
        )
    return update


def lead_score_touchpoint(
    *, locked: Lead, touchpoint: Touchpoint, now: datetime | None = None
) -> ScoreUpdate | None:
    """Add one new touchpoint to the score of a lead whose row the caller holds locked
    (`lead_lock_for_scoring`), inside the caller's transaction.

    Adds one term to the anchored sums; when the stored score was computed by another version (or
    never), recomputes the lead from its touchpoints instead. Returns what changed, including
    whether the lead now crosses into MQL (the caller moves it); None without an active model."""
    now = now or timezone.now()
    # the lock first, then the active version: a rescore that got there first is seen whole
    model = active_for(locked)
    if model is None:
        return None
    qualified_before = _qualified_before(locked, model, now)
    if locked.scored_with_id == model.id:
        points = model.touchpoint_points(
            touchpoint.kind, touchpoint.campaign_id, touchpoint.metadata
        )
        if not points:
            # nothing to add: the stored form stays exact and is not rewritten, but the event
            # still counts for a crossing
            return _write_and_judge(
                locked=locked,
                model=model,
                fit=locked.fit_score,
                state=Anchored.from_lead(locked),
                now=now,
                qualified_before=qualified_before,
                write=False,
            )
        fit = locked.fit_score
        state = anchored_add(
            model,
            Anchored.from_lead(locked),
            points=points,
            occurred_at=touchpoint.occurred_at,
            now=now,
        )
    else:
        whole = Lead.objects.get(pk=locked.pk)  # the whole row, for the fit (already locked)
        fit = _fit_of(whole, model)
        anchor = max(now, touchpoint.occurred_at)
        state = anchored_from_touchpoints(model, _touchpoint_rows(locked.pk, model), at=anchor)
    return _write_and_judge(
        locked=locked,
        model=model,
        fit=fit,
        state=state,
        now=now,
        qualified_before=qualified_before,
    )


def lead_score_refresh(
    *, locked: Lead, now: datetime | None = None, full: bool = False
) -> ScoreUpdate | None:
    """Recompute the fit of a lead whose row the caller holds locked (whole, as just saved) after
    its fields changed, and its engagement too when the stored one came from another version, or
    with full=True (its touchpoints changed other than by touchpoint_record, e.g. a merge moved
    them). Returns what changed, including whether the lead now crosses into MQL."""
    now = now or timezone.now()
    model = active_for(locked)
    if model is None:
        return None
    qualified_before = _qualified_before(locked, model, now)
    fit = _fit_of(locked, model)
    if not full and locked.scored_with_id == model.id and locked.engagement_anchor_at is not None:
        state = Anchored.from_lead(locked)
    else:
        state = anchored_from_touchpoints(model, _touchpoint_rows(locked.pk, model), at=now)
    return _write_and_judge(
        locked=locked,
        model=model,
        fit=fit,
        state=state,
        now=now,
        qualified_before=qualified_before,
    )


def lead_score_now(*, lead: Lead, at: datetime | None = None) -> float:
    """The lead's exact total at `at` from its stored form (no touchpoint read), or from its
    touchpoints for an instant before the stored anchor."""
    at = at or timezone.now()
    if lead.scored_with_id is None:
        return lead.score
    model = compiled_by_id(lead.scored_with_id)
    if model is None:
        return lead.score
    state = Anchored.from_lead(lead)
    if state.anchor is not None and at < state.anchor:
        # the stored sums may hold touchpoints later than `at`: recompute from those before it
        rows = [row for row in _touchpoint_rows(lead.pk, model) if row[3] <= at]
        state = anchored_from_touchpoints(model, rows, at=at)
    return lead.fit_score + engagement_at(model, state, at)


def lead_meets_mql_definition(*, lead: Lead, at: datetime | None = None) -> bool:
    """Whether the lead's stored score (aged to `at`) meets the active MQL definition."""
    model = scoring_model_active()
    if model is None:
        return False
    return _qualified_before(lead, model, at or timezone.now())


# --- score history --------------------------------------------------------------------------------


def score_snapshot_mql(*, lead: Lead, at: datetime) -> ScoreSnapshot | None:
    """Keep the score and its full explanation at the moment the lead became an MQL."""
    explanation = lead_score_explain(lead=lead, at=at)
    if explanation is None:
        return None
    return ScoreSnapshot.objects.create(
        lead=lead,
        model_id=explanation["model"]["id"],
        kind=SnapshotKind.MQL,
        at=at,
        fit=explanation["fit"]["score"],
        engagement=explanation["engagement"]["score"],
        total=explanation["total"],
        grade=explanation["grade"],
        explanation=explanation,
    )


# --- versions and sign-off ------------------------------------------------------------------------
# The life cycle, the approvals and the history are alignment.signoff's; scoring adds its spec
# (validated at creation, edit and proposal), the diff of rules, and the rescore on activation.


def _label(status: str) -> str:
    return signoff.status_label(status)


def _check_actor(by: User | None, system: str, action: Action) -> None:
    signoff.check_actor(SIGNOFF, by, system, action)


def _event(
    model: ScoringModel,
    action: str,
    *,
    by: User | None = None,
    system: str = "",
    note: str = "",
    details: dict | None = None,
    at: datetime | None = None,
) -> ScoringModelEvent:
    return signoff.record(
        SIGNOFF, model, action, by=by, system=system, note=note, details=details, at=at
    )


def _clean_spec(spec: Any) -> dict:
    """validate_spec, plus the database checks: campaigns exist, and their names in labels."""
    raw_rules = list((spec or {}).get("engagement_rules") or []) if isinstance(spec, dict) else []
    ids = {
        r.get("campaign")
        for r in raw_rules
        if isinstance(r, dict) and isinstance(r.get("campaign"), int)
    }
    names = dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    clean = validate_spec(spec)
    for number, (raw, rule) in enumerate(
        zip(raw_rules, clean["engagement_rules"], strict=True), start=1
    ):
        if rule["campaign"] is None:
            continue
        if rule["campaign"] not in names:
            raise ScoringError(
                f"Engagement rule {number} ({rule['key']}) names campaign {rule['campaign']}, "
                "which does not exist.",
                field="rules",
            )
        if not raw.get("label"):
            rule["label"] = engagement_rule_label(rule, names[rule["campaign"]])
    return clean


def _apply_spec(model: ScoringModel, spec: dict) -> None:
    for name, value in spec.items():
        setattr(model, name, value)


@transaction.atomic
def scoring_model_create(
    *,
    name: str,
    spec: dict,
    by: User | None = None,
    system: str = "",
    description: str = "",
    based_on: ScoringModel | None = None,
    origin: str = ModelOrigin.MANUAL,
    report: dict | None = None,
) -> ScoringModel:
    """A new draft version. Fine-tuning calls this with system="tuning", origin="tuning" and its
    report, then scoring_model_propose: the managers still have to approve it."""
    _check_actor(by, system, Action.SCORING_PROPOSE)
    if not name.strip():
        raise ScoringError("A scoring model needs a name.", field="name")
    model = ScoringModel(
        name=name.strip()[:200],
        description=description,
        based_on=based_on,
        origin=origin,
        report=report or {},
        created_by=by,
    )
    _apply_spec(model, _clean_spec(spec))
    model.save()
    _event(model, ModelAction.CREATED, by=by, system=system)
    return model


@transaction.atomic
def scoring_model_copy(
    *, model: ScoringModel, by: User | None = None, system: str = "", name: str = ""
) -> ScoringModel:
    """A draft that starts as a copy of any version (usually the active one)."""
    return scoring_model_create(
        name=name or f"{model.name} (copy)",
        spec=spec_of(model),
        by=by,
        system=system,
        description=model.description,
        based_on=model,
    )


@transaction.atomic
def scoring_model_update(
    *,
    model: ScoringModel,
    by: User,
    spec: dict | None = None,
    name: str | None = None,
    description: str | None = None,
) -> ScoringModel:
    """Edit a draft. Proposed, active and retired versions are frozen."""
    require(by, Action.SCORING_PROPOSE)
    locked = signoff.lock_draft(SIGNOFF, model)
    if spec is not None:
        _apply_spec(locked, _clean_spec(spec))
    if name is not None:
        if not name.strip():
            raise ScoringError("A scoring model needs a name.", field="name")
        locked.name = name.strip()[:200]
    if description is not None:
        locked.description = description
    locked.updated_at = timezone.now()
    locked.save()
    _event(locked, ModelAction.EDITED, by=by)
    model.__dict__.update(locked.__dict__)
    return model


@transaction.atomic
def scoring_model_discard(*, model: ScoringModel, by: User) -> None:
    """Delete a draft (the audit keeps that it existed)."""
    require(by, Action.SCORING_PROPOSE)
    locked = ScoringModel.objects.select_for_update().get(pk=model.pk)
    if locked.status != ModelStatus.DRAFT:
        raise ScoringError(f"Only a draft can be discarded; {locked} is {_label(locked.status)}.")
    _event(locked, ModelAction.DISCARDED, by=by)
    locked.delete()


def _propose_diff(active: ScoringModel | None, model: ScoringModel) -> dict:
    """The rules of a proposal (validated once more: a campaign may be gone) against the active."""
    return spec_diff(spec_of(active) if active else None, _clean_spec(spec_of(model)))


def _activation_diff(previous: ScoringModel | None, model: ScoringModel) -> dict:
    return spec_diff(spec_of(previous) if previous else None, spec_of(model))


def _on_activate(
    model: ScoringModel, previous: ScoringModel | None, by: User | None, now: datetime
) -> dict:
    run = scoring_run_create(model=model, kind=RunKind.ACTIVATION, by=by)
    # the outbox starts the rescore after commit (leads.scoring.tasks.activation_reaction)
    event_record(
        type=EventType.SCORING_ACTIVATED,
        lead=None,
        by=by,
        at=now,
        payload={
            "model_id": model.pk,
            "name": model.name,
            "replaced_id": previous.pk if previous else None,
            "rescore_run_id": run.pk,
        },
    )
    return {"rescore_run": run.pk}


SIGNOFF = signoff.SignOff(
    version_model=ScoringModel,
    approval_model=ScoringApproval,
    event_model=ScoringModelEvent,
    key="model",
    error=ScoringError,
    edit_action=Action.SCORING_PROPOSE,
    approve_action=Action.SCORING_APPROVE,
    subject="the scoring model",
    diff=_propose_diff,
    activation_diff=_activation_diff,
    on_activate=_on_activate,
)


@transaction.atomic
def scoring_model_propose(
    *, model: ScoringModel, by: User | None = None, system: str = "", note: str = ""
) -> ScoringModel:
    """Submit a draft for sign-off; it is frozen from now on and its diff against the active
    version is kept."""
    return signoff.propose(SIGNOFF, version=model, by=by, system=system, note=note)


@transaction.atomic
def scoring_model_withdraw(*, model: ScoringModel, by: User, note: str = "") -> ScoringModel:
    """Marketing takes a proposal back to draft to change it; approvals given so far are dropped."""
    return signoff.withdraw(SIGNOFF, version=model, by=by, note=note)


@transaction.atomic
def scoring_model_send_back(*, model: ScoringModel, by: User, note: str) -> ScoringModel:
    """A manager declines a proposal, with the reason; it returns to draft."""
    return signoff.send_back(SIGNOFF, version=model, by=by, note=note)


@transaction.atomic
def scoring_model_approve(
    *, model: ScoringModel, by: User, note: str = "", read_at: datetime | None = None
) -> ScoringModel:
    """One manager's approval. With both sides approved, the version becomes active: the previous
    one is retired and a full rescore is queued (after commit). `read_at`: the version's
    `updated_at` when the manager read what changes; a version withdrawn, edited or proposed
    again since then is refused, so nobody approves rules they have not read."""
    return signoff.approve(SIGNOFF, version=model, by=by, note=note, read_at=read_at)


# --- full rescore ---------------------------------------------------------------------------------


def scoring_run_create(
    *,
    model: ScoringModel | None = None,
    kind: str = RunKind.MANUAL,
    by: User | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ScoringRun:
    """A full rescore with `model` (default: the active one), queued: the caller starts
    `leads.scoring.tasks.scoring_rescore_run` (an activation does it through the outbox), and the
    beat job resumes any run left queued."""
    if model is None:
        model = ScoringModel.objects.filter(status=ModelStatus.ACTIVE).first()
        if model is None:
            raise ScoringError("There is no active scoring model to rescore with.")
    if batch_size < 1:
        raise ScoringError("The batch size must be at least 1.", field="batch_size")
    return ScoringRun.objects.create(model=model, kind=kind, created_by=by, batch_size=batch_size)


def _lock_batch(after_id: int, size: int) -> tuple[int, int, int] | None:
    """Lock the next batch of lead rows in id order; returns (first id, last id, count)."""
    with connection.cursor() as cursor:
        if connection.features.has_select_for_update:
            cursor.execute(
                "SELECT id FROM leads_lead WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE",
                [after_id, size],
            )
            ids = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute(
                "SELECT id FROM leads_lead WHERE id > %s ORDER BY id LIMIT %s", [after_id, size]
            )
            ids = [row[0] for row in cursor.fetchall()]
            if ids:
                # SQLite has no row locks: a no-op write takes the database's write lock
                cursor.execute(
                    "UPDATE leads_lead SET scored_with_id = scored_with_id WHERE id = %s", [ids[0]]
                )
    return (ids[0], ids[-1], len(ids)) if ids else None


def _still_active(model_id: int) -> bool:
    qs = ScoringModel.objects.filter(pk=model_id, status=ModelStatus.ACTIVE)
    if not connection.features.has_select_for_update:
        return qs.exists()
    # held until the batch commits: an activation retiring this version waits for the batch
    qs = qs.select_for_update(no_key=connection.features.has_select_for_no_key_update)
    return bool(list(qs.values_list("pk", flat=True)))


def _stored_qualifies(
    *, fit: int, score: float, scored_with_id: int | None, models: dict[int, CompiledModel | None]
) -> bool:
    """Whether a stored score meets the definition of the version that computed it (`models`
    caches the compiled versions across calls)."""
    if scored_with_id is None:
        return False
    if scored_with_id not in models:
        models[scored_with_id] = compiled_by_id(scored_with_id)
    scored_with = models[scored_with_id]
    return bool(scored_with and scored_with.qualifies(fit=fit, total=score))


def _pre_mql_state(**scope: Any) -> dict[int, tuple[int, bool]]:
    """For the leads in new, nurturing or recycled within `scope`: their MQL count and whether
    their stored score meets the definition of the version that scored them (taken before a
    set-based rescore, to tell who crosses)."""
    models: dict[int, CompiledModel | None] = {}
    rows = Lead.objects.filter(stage__in=PRE_MQL_STAGES, **scope).order_by()
    return {
        pk: (
            count,
            _stored_qualifies(fit=fit, score=score, scored_with_id=with_id, models=models),
        )
        for pk, count, fit, score, with_id in rows.values_list(
            "pk", "mql_count", "fit_score", "score", "scored_with_id"
        )
    }


def _crossing(before: dict[int, tuple[int, bool]], model: CompiledModel, **scope: Any) -> list[int]:
    """After a set-based rescore: the leads of `before` that now cross into MQL."""
    if not before:
        return []
    qualifying = Lead.objects.filter(
        stage__in=PRE_MQL_STAGES,
        fit_score__gte=model.mql_fit,
        score__gte=model.mql_total,
        **scope,
    ).order_by("pk")
    return [
        pk
        for pk in qualifying.values_list("pk", flat=True)
        if pk in before
        and crosses_into_mql(
            stage=Stage.NEW,
            mql_count=before[pk][0],
            qualified_before=before[pk][1],
            qualifies=True,
        )
    ]


def scoring_model_newly_qualifying(
    *, model: ScoringModel, at: datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """How many leads would become MQLs if `model` were activated now: leads in new, nurturing or
    recycled that would meet its definition and cross (never an MQL, or below the line of the
    version that scored them). Read only; shown on the version's page before the sign-off."""
    compiled = compiled_model(model)
    at = at or timezone.now()
    models: dict[int, CompiledModel | None] = {}
    count, after_id = 0, 0
    while True:
        qs = Lead.objects.filter(stage__in=PRE_MQL_STAGES, pk__gt=after_id).order_by("pk")
        leads = list((qs.select_related("source") if compiled.uses_source else qs)[:batch_size])
        if not leads:
            return count
        after_id = leads[-1].pk
        for lead, fit, _, engagement in scoring_sql.scores_python(compiled, leads, at=at):
            qualified_before = _stored_qualifies(
                fit=lead.fit_score,
                score=lead.score,
                scored_with_id=lead.scored_with_id,
                models=models,
            )
            count += crosses_into_mql(
                stage=lead.stage,
                mql_count=lead.mql_count,
                qualified_before=qualified_before,
                qualifies=compiled.qualifies(fit=fit, total=fit + engagement),
            )


def _grade_moves_python(
    compiled: CompiledModel, moves: dict[tuple[str, str], int], batch_size: int, **scope: Any
) -> None:
    after_id = 0
    while True:
        qs = Lead.objects.filter(pk__gt=after_id, **scope).exclude(scored_with_id=None)
        qs = qs.order_by("pk")
        leads = list((qs.select_related("source") if compiled.uses_source else qs)[:batch_size])
        if not leads:
            return
        after_id = leads[-1].pk
        for lead in leads:
            source_key = lead.source.key if compiled.uses_source and lead.source_id else None
            grade = compiled.grade(compiled.fit_score(lead_values(lead, source_key=source_key)))
            if grade != lead.grade:
                moves[(lead.grade, grade)] = moves.get((lead.grade, grade), 0) + 1


def _grade_moves_postgres(compiled: CompiledModel, moves: dict[tuple[str, str], int]) -> list[int]:
    """The grade moves of every scored lead that SQL decides, in one GROUP BY; returns the ids of
    the leads only Python scores exactly (see leads.scoring.sql)."""
    python_ids: list[int] = []
    with connection.cursor() as cursor:
        undecided = scoring_sql.python_leads_statement(compiled)
        if undecided is not None:
            cursor.execute(undecided[0], {**undecided[1], "lo": 0, "hi": 2**63 - 1})
            python_ids = [row[0] for row in cursor.fetchall()]
        p = SqlParams()
        fit = scoring_sql.fit_score_sql(
            compiled, p, lead="l", source_key=scoring_sql.SOURCE_KEY_SQL
        )
        cursor.execute(
            f"""SELECT x.grade, {scoring_sql.grade_sql(compiled, "x.fit", p)} AS new_grade,
                       count(*)
                FROM (
                    SELECT l.grade, {fit} AS fit FROM leads_lead l
                    WHERE l.scored_with_id IS NOT NULL
                      AND NOT (l.id = ANY(%(python_ids)s::bigint[]))
                ) x
                GROUP BY 1, 2""",
            {**p.values, "python_ids": python_ids},
        )
        for old, new, count in cursor.fetchall():
            if old != new:
                moves[(old, new)] = moves.get((old, new), 0) + count
    return python_ids


def scoring_model_grade_changes(
    *, model: ScoringModel, batch_size: int = DEFAULT_BATCH_SIZE, use_sql: bool | None = None
) -> list[dict]:
    """How many leads would show another grade if `model` were activated: one row per move
    ({"from": "C", "to": "B", "count": n}, by grade), over every lead that has a score now (a lead
    never scored has no grade to change; the activation gives it one). The grade depends on the
    fit alone, so no touchpoint is read. Read only. PostgreSQL: one GROUP BY over the fit as SQL
    (plus Python for the few leads SQL cannot decide); other databases: Python in batches."""
    compiled = compiled_model(model)
    moves: dict[tuple[str, str], int] = {}
    if use_sql is None:
        use_sql = connection.vendor == "postgresql"
    if use_sql:
        python_ids = _grade_moves_postgres(compiled, moves)
        if python_ids:
            _grade_moves_python(compiled, moves, batch_size, pk__in=python_ids)
    else:
        _grade_moves_python(compiled, moves, batch_size)
    return [
        {"from": old, "to": new, "count": count}
        for (old, new), count in sorted(moves.items())
        if count
    ]


def scoring_model_preview_record(*, model_id: int) -> int | None:
    """Count, for a draft or proposed version, the leads it would make MQLs
    (scoring_model_newly_qualifying) and those whose grade it would change
    (scoring_model_grade_changes), and keep the figures (with their time) on the version, for its
    page and the approval's confirmation. Run by a task: on a million leads the count takes
    minutes. Returns the MQL count, or None when the version is gone or no longer pending."""
    model = ScoringModel.objects.filter(
        pk=model_id, status__in=(ModelStatus.DRAFT, ModelStatus.PROPOSED)
    ).first()
    if model is None:
        return None
    at = timezone.now()
    count = scoring_model_newly_qualifying(model=model, at=at)
    moves = scoring_model_grade_changes(model=model)
    preview = {
        "count": count,
        "grade_changes": sum(move["count"] for move in moves),
        "grade_moves": moves,
        "at": at.isoformat(),
    }
    # a conditional update of the report alone: the frozen spec is not touched
    report = {**model.report, "activation_preview": preview}
    ScoringModel.objects.filter(pk=model.pk, updated_at=model.updated_at).update(report=report)
    return count


def leads_rescore(*, lead_ids: list[int], at: datetime | None = None) -> list[int]:
    """Rescore the given leads set-based with the active version (for bulk writers such as an
    import). Never moves a stage: returns the ids of the leads that now cross into MQL, for the
    caller to move through the lifecycle service. Call it in chunks of a few thousand ids."""
    model = scoring_model_active()
    if model is None or not lead_ids:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        ids = sorted(set(lead_ids))
        if connection.features.has_select_for_update:
            cursor.execute(
                "SELECT id FROM leads_lead WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids]
            )
            ids = [row[0] for row in cursor.fetchall()]
        else:
            ids = list(Lead.objects.filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
        before = _pre_mql_state(pk__in=ids)
        at = at or timezone.now()
        if connection.vendor == "postgresql":
            scoring_sql.rescore_batch_postgres(model, ids=ids, at=at, snapshots=False)
        else:
            scoring_sql.rescore_batch_python(model, ids=ids, at=at, snapshots=False)
        return _crossing(before, model, pk__in=ids)


def leads_qualified_not_mql(*, model: CompiledModel) -> int:
    """Leads in new/nurturing/recycled whose stored score meets the MQL definition."""
    return Lead.objects.filter(
        stage__in=PRE_MQL_STAGES, fit_score__gte=model.mql_fit, score__gte=model.mql_total
    ).count()


def scoring_run_execute(
    *,
    run_id: int,
    at: datetime | None = None,
    progress: Callable[[ScoringRun], None] | None = None,
    use_sql: bool | None = None,
    on_crossing: Callable[[list[int]], Any] | None = None,
) -> ScoringRun | None:
    """Run (or resume) a full rescore, one transaction per batch of leads in id order.

    Each batch first locks its lead rows (SELECT ... FOR UPDATE ORDER BY id), then computes and
    writes them. A real-time update on one of those leads either committed before the lock (and its
    touchpoint is read by the batch) or waits and applies on top of the batch's result. Stages are
    never changed here: for an activation, the leads of each batch that now cross into MQL are
    handed to `on_crossing` after the batch commits (the task passes the lifecycle service's
    leads_qualify). Returns None when another worker holds the run. `at` fixes the scoring
    instant of every batch (benchmarks); by default each batch uses the time it runs."""
    now = timezone.now()
    claimed = (
        ScoringRun.objects.filter(pk=run_id)
        .filter(
            Q(status=RunStatus.QUEUED)
            | Q(status=RunStatus.RUNNING, heartbeat_at__lt=now - RUN_STALE_AFTER)
        )
        .update(status=RunStatus.RUNNING, heartbeat_at=now)
    )
    if claimed != 1:
        return None
    run = ScoringRun.objects.select_related("model").get(pk=run_id)
    if run.started_at is None:
        run.started_at = now
        run.total = Lead.objects.count()
        run.save(update_fields=["started_at", "total"])
    model = compiled_model(run.model)
    snapshots = run.kind == RunKind.ACTIVATION
    if use_sql is None:
        use_sql = connection.vendor == "postgresql"
    statement = scoring_sql.rescore_statement(model, snapshots=snapshots) if use_sql else None
    try:
        while True:
            with transaction.atomic():
                if not _still_active(run.model_id):
                    run.status = RunStatus.SUPERSEDED
                    run.message = f"Stopped: {run.model} is no longer the active version."
                    break
                batch = _lock_batch(run.last_lead_id, run.batch_size)
                if batch is None:
                    break
                lo, hi, count = batch
                batch_at = at or timezone.now()
                before = _pre_mql_state(pk__gte=lo, pk__lte=hi) if snapshots else {}
                if use_sql:
                    written = scoring_sql.rescore_batch_postgres(
                        model, lo=lo, hi=hi, at=batch_at, snapshots=snapshots, statement=statement
                    )
                else:
                    written = scoring_sql.rescore_batch_python(
                        model, lo=lo, hi=hi, at=batch_at, snapshots=snapshots
                    )
                run.processed += count
                run.snapshots += written
                run.last_lead_id = hi
                run.heartbeat_at = timezone.now()
                run.save(update_fields=["processed", "snapshots", "last_lead_id", "heartbeat_at"])
                crossing = _crossing(before, model, pk__gte=lo, pk__lte=hi)
            if crossing and on_crossing is not None:
                on_crossing(crossing)
            if progress:
                progress(run)
    except OperationalError:
        # transient (connection lost, deadlock): hand the run back so a retry resumes it
        ScoringRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
        raise
    except Exception as error:
        ScoringRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, message=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    if run.status != RunStatus.SUPERSEDED:
        run.status = RunStatus.DONE
        run.qualified_not_moved = leads_qualified_not_mql(model=model)
        run.message = (
            f"{run.processed} leads rescored with {run.model}."
            + (f" {run.snapshots} score changes kept in the history." if snapshots else "")
            + (
                f" {run.qualified_not_moved} leads in new, nurturing or recycled meet the MQL "
                "definition without crossing it now (recycled by sales, or met it before); they "
                "become MQLs when they cross at a later event."
                if run.qualified_not_moved
                else ""
            )
        )
    run.finished_at = timezone.now()
    run.heartbeat_at = run.finished_at
    run.save()
    if progress:
        progress(run)
    return run


def scoring_runs_stalled(*, now: datetime | None = None) -> list[int]:
    """Runs that should be running but nobody works on: queued for a while, or running with a
    stale heartbeat (a worker died, or the broker lost the message)."""
    now = now or timezone.now()
    return list(
        ScoringRun.objects.filter(
            Q(status=RunStatus.QUEUED, created_at__lt=now - timedelta(minutes=5))
            | Q(status=RunStatus.RUNNING, heartbeat_at__lt=now - RUN_STALE_AFTER)
        ).values_list("pk", flat=True)
    )


def scoring_run_unfinished() -> ScoringRun | None:
    """The latest full rescore of the active version when it has not finished (queued, running,
    or failed): a new rescore continues it rather than starting a second one."""
    return (
        ScoringRun.objects.filter(model__status=ModelStatus.ACTIVE)
        .select_related("model")
        .order_by("-id")
        .filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED))
        .first()
    )


def scoring_run_in_progress(*, run: ScoringRun, now: datetime | None = None) -> bool:
    """Whether a process works on the run now (it is running and its heartbeat is fresh)."""
    now = now or timezone.now()
    return run.status == RunStatus.RUNNING and (
        run.heartbeat_at is not None and run.heartbeat_at >= now - RUN_STALE_AFTER
    )


def scoring_run_resume(*, run_id: int, batch_size: int | None = None) -> ScoringRun | None:
    """Queue a failed (or queued) run again, to continue after the last batch it committed (the
    batches before it stay done), with a new batch size if given. Returns the run, or None when
    it is neither failed nor queued any more (another process took it)."""
    if batch_size is not None and batch_size < 1:
        raise ScoringError("The batch size must be at least 1.", field="batch_size")
    changes: dict[str, Any] = {"status": RunStatus.QUEUED, "message": "", "finished_at": None}
    if batch_size is not None:
        changes["batch_size"] = batch_size
    waiting = ScoringRun.objects.filter(pk=run_id, status__in=(RunStatus.FAILED, RunStatus.QUEUED))
    if not waiting.update(**changes):
        return None
    return ScoringRun.objects.select_related("model").get(pk=run_id)
