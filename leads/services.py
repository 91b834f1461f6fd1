"""Every write to a lead goes through here: pages, API, admin, commands, imports and tasks.

Each service locks the lead row (select_for_update), writes only the fields that changed and
appends its events (leads.events) in one transaction. The chain is explicit: a touchpoint or a
changed field is scored (leads.scoring.services returns what changed and whether the lead now
crosses into MQL), the crossing is a move made here (lead_move), and a move into MQL routes the
lead (leads.routing). What must happen after commit (the won announcement, SLA clocks, webhooks)
reacts to the events through the outbox.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.forms.models import model_to_dict
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.permissions import Action, require
from leads.events import NewEvent, event_record, events_record_bulk, json_value
from leads.models import (
    FIRST_TOUCH_KINDS,
    LEAD_TEXT_FIELDS,
    SALES_TOUCHPOINT_KINDS,
    Announcement,
    Assignment,
    Campaign,
    EventType,
    Lead,
    MergeRecord,
    Reason,
    ReasonKind,
    Source,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointKind,
    normalise_email,
    normalise_key,
)
from leads.routing import lead_route
from leads.scoring.services import (
    SCORING_SYSTEM,
    ScoreUpdate,
    lead_lock_for_scoring,
    lead_meets_mql_definition,
    lead_score_refresh,
    lead_score_touchpoint,
    score_snapshot_mql,
)

# The one table of allowed moves.
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


def _check_actor(*, lead: Lead, to: str, by: User | None, system: str) -> None:
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


def _lock(lead: Lead | int) -> Lead:
    pk = lead if isinstance(lead, int) else lead.pk
    try:
        return Lead.objects.select_for_update().get(pk=pk)
    except Lead.DoesNotExist:
        raise DomainError(f"Lead {pk} no longer exists (merged or never created).") from None


def _copy_state(*, source: Lead, target: Lead) -> None:
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
    locked = _lock(lead)
    reason_obj = _resolve_reason(to, reason) if to in REASON_REQUIRED else None
    # a rejection whose reason recycles ("not ready yet") sends the lead back to marketing
    if to == Stage.REJECTED and reason_obj is not None and reason_obj.recycles:
        to = Stage.RECYCLED
    if to not in ALLOWED_MOVES[locked.stage]:
        raise _refuse_move(locked, to)
    _check_actor(lead=locked, to=to, by=by, system=system)
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
        event_record(
            type=event.type,
            lead=locked,
            by=by,
            system=system,
            at=at,
            payload=event.payload,
        )
    if to == Stage.MQL:
        score_snapshot_mql(lead=locked, at=at)
        if locked.owner_id is None:
            lead_route(lead=locked, now=at)
    _copy_state(source=locked, target=lead)
    return lead


def _qualify(*, lead: Lead, update: ScoreUpdate | None, system: str = SCORING_SYSTEM) -> None:
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
            if (
                locked is None
                or locked.stage not in ALLOWED_MOVES
                or Stage.MQL not in (ALLOWED_MOVES[locked.stage])
            ):
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


# --- lead data: intake and updates ---------------------------------------------------------------


def source_for(name: str | None) -> Source | None:
    """`google`, `Google ` and `GOOGLE` are one Source; the first spelling seen is its name."""
    key = normalise_key(name or "")
    if not key:
        return None
    source, _ = Source.objects.get_or_create(key=key, defaults={"name": name.strip()})
    return source


def campaign_for_utm(utm_campaign: str | None) -> Campaign | None:
    if not utm_campaign:
        return None
    return Campaign.objects.filter(utm_campaign__iexact=utm_campaign.strip()).first()


def lead_find(*, email: str | None = None, external_id: str | None = None) -> Lead | None:
    """Intake matching: external id first, then email (case-insensitive)."""
    external_id = (external_id or "").strip() or None
    if external_id:
        found = Lead.objects.filter(external_id=external_id).first()
        if found:
            return found
    email = normalise_email(email)
    if email:
        return Lead.objects.filter(email=email).first()
    return None


def _find_locked(*, email: str | None, external_id: str | None) -> Lead | None:
    found = lead_find(email=email, external_id=external_id)
    return _lock(found) if found is not None else None


# the lead data a person or another system may set; everything else belongs to a service
EDITABLE_FIELDS = frozenset({*LEAD_TEXT_FIELDS, "company_size", "source", "campaign", "attributes"})
_MAX_LENGTH = {f: Lead._meta.get_field(f).max_length for f in LEAD_TEXT_FIELDS}


def _clean_changes(data: dict[str, Any]) -> dict[str, Any]:
    """Known fields checked and converted (attname -> value); unknown keys land in attributes."""
    data = dict(data)
    clean: dict[str, Any] = {}
    for field in LEAD_TEXT_FIELDS:
        if field in data:
            value = str(data.pop(field) or "").strip()
            if len(value) > _MAX_LENGTH[field]:
                label = Lead._meta.get_field(field).verbose_name
                raise DomainError(
                    f"{label.capitalize()} is longer than {_MAX_LENGTH[field]} characters.",
                    field=field,
                )
            clean[field] = value
    if "company_size" in data:
        size = data.pop("company_size")
        try:
            size = None if size in (None, "") else int(size)
        except (TypeError, ValueError):
            raise DomainError(
                "Company size must be a whole number.", field="company_size"
            ) from None
        if size is not None and size < 0:
            raise DomainError("Company size cannot be negative.", field="company_size")
        clean["company_size"] = size
    if "source" in data:
        source = data.pop("source")
        clean["source_id"] = (
            source.pk if isinstance(source, Source) else getattr(source_for(source), "pk", None)
        )
    if "campaign" in data:
        campaign = data.pop("campaign")
        if isinstance(campaign, Campaign) or campaign is None or campaign == "":
            clean["campaign_id"] = campaign.pk if campaign else None
        else:
            found = Campaign.objects.filter(Q(name=campaign) | Q(utm_campaign=campaign)).first()
            clean["campaign_id"] = found.pk if found else None
    extra = data.pop("attributes", None) or {}
    if not isinstance(extra, dict):
        raise DomainError("Attributes must be an object of key/value pairs.", field="attributes")
    extra.update(data)
    if extra:
        clean["attributes"] = {normalise_key(k): v for k, v in extra.items()}
    return clean


def _apply(lead: Lead, clean: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the values that differ on `lead`; returns {field: [old, new]} of what changed."""
    changes: dict[str, list[Any]] = {}
    for attname, value in clean.items():
        if attname == "attributes":
            current = lead.attributes if isinstance(lead.attributes, dict) else {}
            merged = {**current, **value}
            if merged != current:
                changes["attributes"] = [current, merged]
                lead.attributes = merged
            continue
        old = getattr(lead, attname)
        if old != value:
            changes[attname.removesuffix("_id")] = [old, value]
            setattr(lead, attname, value)
    # a lead from a campaign's UTM link belongs to that campaign
    if lead.campaign_id is None and lead.utm_campaign and "utm_campaign" in changes:
        campaign = campaign_for_utm(lead.utm_campaign)
        if campaign is not None:
            changes["campaign"] = [None, campaign.pk]
            lead.campaign_id = campaign.pk
    return changes


def _changed_attnames(changes: dict[str, list[Any]]) -> list[str]:
    fields = {f.name: f.attname for f in Lead._meta.concrete_fields}
    return [fields[name] for name in changes] + ["updated_at"]


def lead_updated_event(
    *, lead_id: int, changes: dict[str, list[Any]], by: User | None, system: str, at: datetime
) -> NewEvent:
    return NewEvent(
        type=EventType.LEAD_UPDATED,
        lead_id=lead_id,
        occurred_at=at,
        payload={"changes": json_value(changes)},
        actor_id=by.pk if by else None,
        system=system,
    )


def lead_created_event(*, lead: Lead, by: User | None, system: str, at: datetime) -> NewEvent:
    return NewEvent(
        type=EventType.LEAD_CREATED,
        lead_id=lead.pk,
        occurred_at=at,
        payload={"email": lead.email, "external_id": lead.external_id},
        actor_id=by.pk if by else None,
        system=system,
    )


def _record(event: NewEvent, *, by: User | None) -> None:
    event_record(
        type=event.type,
        lead=Lead(pk=event.lead_id),
        by=by,
        system=event.system,
        at=event.occurred_at,
        payload=event.payload,
    )


@dataclass
class IntakeResult:
    lead: Lead
    created: bool
    changed: bool


@transaction.atomic
def lead_intake(*, data: dict[str, Any], by: User | None = None, system: str = "") -> IntakeResult:
    """Create or update one lead from outside data (a form, the API, a CRM), matched by external id
    then email. Known fields are set, anything else lands in `attributes`. A new lead, or one
    whose data now meets the MQL definition, becomes an MQL here."""
    if by is not None:
        require(by, Action.LEAD_CREATE)
    elif not system:
        raise DomainError("A lead change needs a person or a named system.")
    data = dict(data)
    email = normalise_email(data.pop("email", None))
    external_id = (str(data.pop("external_id", "") or "")).strip() or None
    if email is None and external_id is None:
        raise DomainError("A lead needs an email or an external id.", field="email")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise DomainError(f"“{email}” is not a valid email address.", field="email") from None
    clean = _clean_changes(data)
    now = timezone.now()
    lead = _find_locked(email=email, external_id=external_id)
    created = False
    if lead is None:
        new = Lead(email=email, external_id=external_id, created_at=now, stage_changed_at=now)
        _apply(new, clean)
        try:
            # a concurrent intake of the same person waits on the unique index, then fails here
            with transaction.atomic():
                new.save(force_insert=True)
        except IntegrityError:
            lead = _find_locked(email=email, external_id=external_id)
            if lead is None:
                raise
        else:
            lead, created = new, True
            _record(lead_created_event(lead=lead, by=by, system=system, at=now), by=by)
    changes: dict[str, list[Any]] = {}
    if not created:
        if email and not lead.email:
            clean["email"] = email
        if external_id and not lead.external_id:
            clean["external_id"] = external_id
        changes = _apply(lead, clean)
        if changes:
            lead.save(update_fields=_changed_attnames(changes))
            _record(
                lead_updated_event(lead_id=lead.pk, changes=changes, by=by, system=system, at=now),
                by=by,
            )
    if created or changes:
        update = lead_score_refresh(locked=lead, now=now)
        _qualify(lead=lead, update=update)
    return IntakeResult(lead=lead, created=created, changed=created or bool(changes))


@transaction.atomic
def lead_update(
    *, lead: Lead, changes: dict[str, Any], by: User | None = None, system: str = ""
) -> Lead:
    """Change a lead's own data (person, company, source, campaign, attributes): the admin, the
    API. Writes only the fields that differ, with one lead.updated event; the score follows, and
    a lead that now meets the MQL definition becomes an MQL."""
    if by is not None:
        require(by, Action.LEAD_EDIT)
    elif not system:
        raise DomainError("A lead change needs a person or a named system.")
    unknown = sorted(set(changes) - EDITABLE_FIELDS)
    if unknown:
        raise DomainError(
            f"{', '.join(unknown)} cannot be changed here: stages, owners and scores change "
            "only through their own actions.",
            field=unknown[0],
        )
    clean = _clean_changes(changes)
    locked = _lock(lead)
    now = timezone.now()
    changed = _apply(locked, clean)
    if changed:
        locked.save(update_fields=_changed_attnames(changed))
        _record(
            lead_updated_event(lead_id=locked.pk, changes=changed, by=by, system=system, at=now),
            by=by,
        )
        _qualify(lead=locked, update=lead_score_refresh(locked=locked, now=now))
    _copy_state(source=locked, target=lead)
    return lead


# --- touchpoints ---------------------------------------------------------------------------------


@transaction.atomic
def touchpoint_record(
    *,
    lead: Lead,
    kind: str,
    occurred_at: datetime | None = None,
    campaign: Campaign | None = None,
    metadata: dict | None = None,
    by: User | None = None,
    system: str = "",
) -> Touchpoint:
    """One interaction, scored at once. The first sales touch after an MQL is stamped on the lead
    (speed-to-lead); a touch that makes the lead meet the MQL definition makes it an MQL."""
    if kind not in TouchpointKind.values:
        raise DomainError(f"Unknown touchpoint kind {kind!r}.", field="kind")
    is_sales = kind in SALES_TOUCHPOINT_KINDS
    if by is not None:
        require(by, Action.TOUCHPOINT_SALES if is_sales else Action.TOUCHPOINT_MARKETING)
    elif not system:
        raise DomainError("A touchpoint needs a person or a named system.")
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + timedelta(minutes=5):
        raise DomainError("A touchpoint cannot happen in the future.", field="occurred_at")
    metadata = dict(metadata or {})
    if campaign is None:
        campaign = campaign_for_utm(metadata.get("utm_campaign"))
    try:
        locked = lead_lock_for_scoring(lead.pk)
    except Lead.DoesNotExist:
        raise DomainError(f"Lead {lead.pk} no longer exists (merged or never created).") from None
    # a rep works their own queue: their calls on it are what the SLA clock measures
    rep_on_other_lead = (
        by is not None and by.effective_role == Role.SALES_REP and locked.owner_id != by.pk
    )
    if is_sales and rep_on_other_lead:
        raise DomainError(
            f"{lead.display_name} is not assigned to you; only its owner or a sales manager "
            "can log sales activity on it."
        )
    touchpoint = Touchpoint.objects.create(
        lead_id=locked.pk,
        kind=kind,
        occurred_at=occurred_at,
        campaign=campaign,
        metadata=metadata,
        created_by=by,
        created_at=now,
    )
    first_touch = (
        kind in FIRST_TOUCH_KINDS
        and locked.mql_at is not None
        and occurred_at >= locked.mql_at
        and locked.first_sales_touch_at is None
    )
    event_record(
        type=EventType.TOUCHPOINT_RECORDED,
        lead=locked,
        by=by,
        system=system,
        at=occurred_at,
        payload={
            "touchpoint_id": touchpoint.pk,
            "kind": kind,
            "campaign_id": touchpoint.campaign_id,
            "sales": is_sales,
            **({"first_sales_touch": True} if first_touch else {}),
        },
    )
    if first_touch:
        # the row is locked: no other touch can have stamped it meanwhile
        Lead.objects.filter(pk=locked.pk).update(first_sales_touch_at=occurred_at)
        locked.first_sales_touch_at = occurred_at
    update = lead_score_touchpoint(locked=locked, touchpoint=touchpoint, now=now)
    _copy_state(source=locked, target=lead)
    _qualify(lead=lead, update=update)
    return touchpoint


# --- merge ---------------------------------------------------------------------------------------

MERGE_FILL_FIELDS = (
    *LEAD_TEXT_FIELDS,
    "company_size",
    "source_id",
    "campaign_id",
    "owner_id",
    "deal_value",
)


@transaction.atomic
def lead_merge(*, survivor: Lead, duplicate: Lead, by: User) -> Lead:
    """Fold `duplicate` into `survivor`: its touchpoints, history and assignments move over, blank
    fields are filled, attributes are joined (the survivor's win), and a full snapshot of the
    duplicate is kept in a MergeRecord. The survivor keeps its own stage; the duplicate's events
    stay in the log under its old id, named by the survivor's lead.merged event."""
    require(by, Action.LEAD_MERGE)
    if survivor.pk == duplicate.pk:
        raise DomainError("A lead cannot be merged into itself.")
    locked = {
        lead.pk: lead
        for lead in Lead.objects.select_for_update()
        .filter(pk__in=[survivor.pk, duplicate.pk])
        .order_by("pk")
    }
    if len(locked) != 2:
        raise DomainError("One of the two leads no longer exists.")
    keep, gone = locked[survivor.pk], locked[duplicate.pk]
    before = {f.attname: getattr(keep, f.attname) for f in Lead._meta.concrete_fields}
    snapshot = DjangoJSONEncoder().encode(model_to_dict(gone))
    for field in MERGE_FILL_FIELDS:
        if getattr(keep, field) in (None, "") and getattr(gone, field) not in (None, ""):
            setattr(keep, field, getattr(gone, field))
    keep.attributes = {**gone.attributes, **keep.attributes}
    keep.mql_count += gone.mql_count
    for stamp in ("first_mql_at", "first_sales_touch_at"):
        values = [v for v in (getattr(keep, stamp), getattr(gone, stamp)) if v]
        setattr(keep, stamp, min(values) if values else None)
    keep.created_at = min(keep.created_at, gone.created_at)
    # the unique keys move only after the duplicate lets go of them
    take_email = keep.email is None and gone.email
    take_external = keep.external_id is None and gone.external_id
    moved_email, moved_external = gone.email, gone.external_id
    moved = {
        "touchpoints": Touchpoint.objects.filter(lead=gone).update(lead=keep),
        "stage_changes": StageChange.objects.filter(lead=gone).update(lead=keep),
        "assignments": Assignment.objects.filter(lead=gone).update(lead=keep),
        "merges": MergeRecord.objects.filter(survivor=gone).update(survivor=keep),
    }
    if not Announcement.objects.filter(lead=keep).exists():
        Announcement.objects.filter(lead=gone).update(lead=keep)
    record = MergeRecord.objects.create(
        survivor=keep,
        merged_lead_id=gone.pk,
        snapshot={"lead": json.loads(snapshot)},
        by=by,
    )
    gone.delete()
    if take_email:
        keep.email = moved_email
    if take_external:
        keep.external_id = moved_external
    filled = {
        f.name: [before[f.attname], getattr(keep, f.attname)]
        for f in Lead._meta.concrete_fields
        if before[f.attname] != getattr(keep, f.attname) and f.attname != "updated_at"
    }
    keep.save(update_fields=[*_changed_attnames(filled)])
    event_record(
        type=EventType.LEAD_MERGED,
        lead=keep,
        by=by,
        payload={
            "merged_lead_id": record.merged_lead_id,
            "merge_record_id": record.pk,
            "moved": moved,
            "filled": json_value(filled),
        },
    )
    # the survivor's touchpoints changed other than through touchpoint_record
    update = lead_score_refresh(locked=keep, full=True)
    _qualify(lead=keep, update=update)
    _copy_state(source=keep, target=survivor)
    return survivor
