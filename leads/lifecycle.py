"""The lead lifecycle: the one table of allowed moves and the service that makes them.

A move locks the lead row, writes only the fields it changes, appends the StageChange row and its
events (lead.stage_changed and the move's own: lead.mql, lead.accepted, ...) in one transaction.
A move into MQL keeps the score snapshot and routes an unassigned lead (leads.routing). Scoring
never moves a lead: it says that a lead crosses, and `qualify_if_crossing` makes the move.
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from leads.events import NewEvent, event_record_from, events_record_bulk
from leads.models import EventType, Lead, Reason, ReasonKind, Stage, StageChange
from leads.routing import lead_route
from leads.scoring.services import (
    SCORING_SYSTEM,
    ScoreUpdate,
    lead_meets_mql_definition,
    score_snapshot_mql,
)

ALLOWED_MOVES: dict[str, tuple[str, ...]] = {
    Stage.NEW: (Stage.NURTURING, Stage.MQL),
    Stage.NURTURING: (Stage.MQL,),
    Stage.MQL: (Stage.SAL, Stage.REJECTED, Stage.RECYCLED),
    Stage.SAL: (Stage.SQL, Stage.RECYCLED, Stage.LOST),
    Stage.SQL: (Stage.OPPORTUNITY, Stage.RECYCLED, Stage.LOST),
    Stage.OPPORTUNITY: (Stage.WON, Stage.LOST),
    Stage.WON: (),
    Stage.LOST: (Stage.RECYCLED,),
    Stage.REJECTED: (Stage.RECYCLED,),
    Stage.RECYCLED: (Stage.NURTURING, Stage.MQL),
}

# Which permission each target stage needs.
MOVE_ACTION: dict[str, Action] = {
    Stage.NURTURING: Action.LEAD_QUALIFY,
    Stage.MQL: Action.LEAD_QUALIFY,
    Stage.SAL: Action.LEAD_DECIDE,
    Stage.REJECTED: Action.LEAD_DECIDE,
    Stage.SQL: Action.LEAD_PROGRESS,
    Stage.OPPORTUNITY: Action.LEAD_PROGRESS,
    Stage.WON: Action.LEAD_PROGRESS,
    Stage.LOST: Action.LEAD_PROGRESS,
    Stage.RECYCLED: Action.LEAD_RECYCLE,
}

REASON_REQUIRED: dict[str, tuple[str, ...]] = {
    Stage.REJECTED: (ReasonKind.REJECT,),
    Stage.RECYCLED: (ReasonKind.RECYCLE, ReasonKind.REJECT),
    Stage.LOST: (ReasonKind.LOST,),
}
DEAL_VALUE_REQUIRED = (Stage.OPPORTUNITY, Stage.WON)
STAGE_TIMESTAMP = {
    Stage.NURTURING: "nurturing_at",
    Stage.MQL: "mql_at",
    Stage.SAL: "sal_at",
    Stage.SQL: "sql_at",
    Stage.OPPORTUNITY: "opportunity_at",
    Stage.WON: "won_at",
    Stage.LOST: "lost_at",
    Stage.REJECTED: "rejected_at",
    Stage.RECYCLED: "recycled_at",
}


def _label(stage: str) -> str:
    return Stage(stage).label


def _refuse_move(lead: Lead, to: str) -> DomainError:
    allowed = ALLOWED_MOVES[lead.stage]
    allowed_text = ", ".join(_label(s) for s in allowed) if allowed else "none (final stage)"
    return DomainError(
        f"{lead.display_name} is {_label(lead.stage)}; it cannot move to {_label(to)}. "
        f"Allowed from {_label(lead.stage)}: {allowed_text}.",
        field="stage",
    )


def _resolve_reason(to: str, reason: Reason | str | None) -> Reason | None:
    kinds = REASON_REQUIRED.get(to)
    if kinds is None:
        return None
    if reason is None or reason == "":
        raise DomainError(f"Moving a lead to {_label(to)} needs a reason.", field="reason")
    if isinstance(reason, str):
        found = Reason.objects.filter(code=reason, kind__in=kinds, active=True)
        reason = min(found, key=lambda r: kinds.index(r.kind), default=None)
        if reason is None:
            raise DomainError(f"Unknown reason code for {_label(to)}.", field="reason")
    if not reason.active or reason.kind not in kinds:
        raise DomainError(f"“{reason.label}” is not a reason for {_label(to)}.", field="reason")
    if to == Stage.RECYCLED and not reason.recycles:
        raise DomainError(f"“{reason.label}” does not recycle a lead.", field="reason")
    return reason


def move_reasons(*, to: str, reasons: Iterable[Reason]) -> list[Reason]:
    """Of `reasons`, the ones `lead_move` accepts for a move to `to` (none when the move takes no
    reason); the check the move makes, without a query."""
    if to not in REASON_REQUIRED:
        return []
    fitting = []
    for reason in reasons:
        try:
            _resolve_reason(to, reason)
        except DomainError:
            continue
        fitting.append(reason)
    return fitting


def move_actor_check(*, lead: Lead, to: str, by: User | None, system: str) -> None:
    if by is None:
        if not system:
            raise DomainError("A move needs a person or a named system.")
        return
    require(by, MOVE_ACTION[to])
    # a rep works their own queue; managers and admins act on any lead
    if by.effective_role == "sales_rep" and lead.owner_id != by.id:
        raise DomainError(
            f"{lead.display_name} is not assigned to you; ask a sales manager to reassign it."
        )


def _coerce_deal_value(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise DomainError("Deal value must be a number.", field="deal_value") from None
    if amount <= 0:
        raise DomainError("Deal value must be greater than zero.", field="deal_value")
    return amount


# the specific event of a move, written beside lead.stage_changed
STAGE_EVENT: dict[str, str] = {
    Stage.MQL: EventType.LEAD_MQL,
    Stage.SAL: EventType.LEAD_ACCEPTED,
    Stage.REJECTED: EventType.LEAD_REJECTED,
    Stage.RECYCLED: EventType.LEAD_RECYCLED,
    Stage.WON: EventType.LEAD_WON,
    Stage.LOST: EventType.LEAD_LOST,
}


def lead_lock(lead: Lead | int) -> Lead:
    """The lead's row, locked until the caller's transaction ends."""
    pk = lead if isinstance(lead, int) else lead.pk
    try:
        return Lead.objects.select_for_update().get(pk=pk)
    except Lead.DoesNotExist:
        raise DomainError(f"Lead {pk} no longer exists (merged or never created).") from None


def copy_state(*, source: Lead, target: Lead) -> None:
    """The caller's instance shows what was written (the services work on a locked copy)."""
    if source is not target:
        target.__dict__.update(
            {
                f.attname: getattr(source, f.attname)
                for f in Lead._meta.concrete_fields
                if f.attname in source.__dict__
            }
        )


# --- stage moves ---------------------------------------------------------------------------------


def stage_change_payload(change: StageChange) -> dict[str, Any]:
    return {
        "from": change.from_stage,
        "to": change.to_stage,
        "stage_change_id": change.pk,
        "reason": change.reason.code if change.reason_id else None,
        "note": change.note,
        "deal_value": str(change.deal_value) if change.deal_value is not None else None,
    }


def stage_change_events(change: StageChange) -> list[NewEvent]:
    """The events of one StageChange row: lead.stage_changed and the move's specific one."""
    types = [EventType.LEAD_STAGE_CHANGED]
    if change.to_stage in STAGE_EVENT:
        types.append(STAGE_EVENT[change.to_stage])
    payload = stage_change_payload(change)
    return [
        NewEvent(
            type=t,
            lead_id=change.lead_id,
            occurred_at=change.at,
            payload=payload,
            actor_id=change.by_id,
            system=change.by_system,
        )
        for t in types
    ]


def stage_changes_record_bulk(changes: list[StageChange], *, react: bool) -> None:
    """The bulk form of a move's history for set-based writers (an import of historical
    outcomes): the StageChange rows and their events. The caller has written the lead rows;
    `react=False` for facts from the past, which nothing reacts to."""
    StageChange.objects.bulk_create(changes, batch_size=2000)
    events_record_bulk(
        (event for change in changes for event in stage_change_events(change)), react=react
    )


@transaction.atomic
def lead_move(
    *,
    lead: Lead,
    to: str,
    by: User | None = None,
    system: str = "",
    reason: Reason | str | None = None,
    note: str = "",
    deal_value: Any = None,
    at: datetime | None = None,
) -> Lead:
    """The only way a lead changes stage: checks the move, the role and the required data, then
    writes the row, the history and the events. A move into MQL keeps the score snapshot and
    routes an unassigned lead. A refused move changes nothing."""
    if to not in Stage.values:
        raise DomainError(f"Unknown stage {to!r}.", field="stage")
    at = at or timezone.now()
    # lock the row: two people deciding the same MQL at once must not both succeed
    locked = lead_lock(lead)
    reason_obj = _resolve_reason(to, reason) if to in REASON_REQUIRED else None
    # a rejection whose reason recycles ("not ready yet") sends the lead back to marketing
    if to == Stage.REJECTED and reason_obj is not None and reason_obj.recycles:
        to = Stage.RECYCLED
    if to not in ALLOWED_MOVES[locked.stage]:
        raise _refuse_move(locked, to)
    move_actor_check(lead=locked, to=to, by=by, system=system)
    if reason_obj is not None and reason_obj.requires_note and not note.strip():
        raise DomainError(f"The reason “{reason_obj.label}” needs a note.", field="note")
    amount = _coerce_deal_value(deal_value)
    if to in DEAL_VALUE_REQUIRED:
        amount = amount or locked.deal_value
        if amount is None:
            raise DomainError(
                f"Moving a lead to {_label(to)} needs a deal value.", field="deal_value"
            )

    from_stage = locked.stage
    changed = ["stage", "stage_changed_at", STAGE_TIMESTAMP[to], "updated_at"]
    locked.stage = to
    locked.stage_changed_at = at
    setattr(locked, STAGE_TIMESTAMP[to], at)
    if amount is not None and amount != locked.deal_value:
        locked.deal_value = amount
        changed.append("deal_value")
    if reason_obj is not None:
        locked.last_reason = reason_obj
        changed.append("last_reason")
    if to == Stage.MQL:
        locked.mql_count += 1
        locked.first_mql_at = locked.first_mql_at or at
        locked.first_sales_touch_at = None
        changed += ["mql_count", "first_mql_at", "first_sales_touch_at"]
    if to == Stage.RECYCLED:
        # back with marketing: the lead leaves the rep's queue; a re-MQL is routed afresh
        locked.owner = None
        locked.assigned_at = None
        changed += ["owner", "assigned_at"]
    locked.save(update_fields=changed)
    change = StageChange.objects.create(
        lead=locked,
        from_stage=from_stage,
        to_stage=to,
        at=at,
        by=by,
        by_system=system,
        reason=reason_obj,
        note=note.strip(),
        deal_value=amount if to in DEAL_VALUE_REQUIRED else None,
    )
    for event in stage_change_events(change):
        event_record_from(event, by=by)
    if to == Stage.MQL:
        score_snapshot_mql(lead=locked, at=at)
        if locked.owner_id is None:
            lead_route(lead=locked, now=at)
    copy_state(source=locked, target=lead)
    return lead


def qualify_if_crossing(
    *, lead: Lead, update: ScoreUpdate | None, system: str = SCORING_SYSTEM
) -> None:
    """Scoring said the lead now meets the MQL definition: make it the move it is."""
    if update is not None and update.crosses:
        lead_move(lead=lead, to=Stage.MQL, system=system, at=update.at)


def leads_qualify(*, lead_ids: list[int], system: str) -> int:
    """Move to MQL the given leads that still stand in new, nurturing or recycled and meet the
    active MQL definition (after a set-based rescore: an import, a new scoring version). One
    transaction per lead; routing respects each rep's capacity, so an overflow waits unassigned
    for a sales manager. Returns how many moved."""
    moved = 0
    for pk in lead_ids:
        with transaction.atomic():
            locked = Lead.objects.select_for_update().filter(pk=pk).first()
            # read again under the lock: sales or another event may have moved it meanwhile
            if locked is None or Stage.MQL not in ALLOWED_MOVES[locked.stage]:
                continue
            if not lead_meets_mql_definition(lead=locked):
                continue
            lead_move(lead=locked, to=Stage.MQL, system=system)
            moved += 1
    return moved


def lead_accept(*, lead: Lead, by: User, note: str = "") -> Lead:
    return lead_move(lead=lead, to=Stage.SAL, by=by, note=note)


def lead_reject(*, lead: Lead, by: User, reason: Reason | str | None, note: str = "") -> Lead:
    return lead_move(lead=lead, to=Stage.REJECTED, by=by, reason=reason, note=note)


def lead_recycle(*, lead: Lead, by: User, reason: Reason | str | None, note: str = "") -> Lead:
    return lead_move(lead=lead, to=Stage.RECYCLED, by=by, reason=reason, note=note)
