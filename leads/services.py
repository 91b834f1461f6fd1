"""Every write to the pipeline goes through here: pages, API, admin actions, commands and tasks."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.forms.models import model_to_dict
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from leads import signals
from leads.models import (
    FIRST_TOUCH_KINDS,
    LEAD_TEXT_FIELDS,
    SALES_TOUCHPOINT_KINDS,
    Announcement,
    Assignment,
    Campaign,
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
    records it in the append-only history. A refused move changes nothing."""
    if to not in Stage.values:
        raise DomainError(f"Unknown stage {to!r}.", field="stage")
    at = at or timezone.now()
    # lock the row: two people deciding the same MQL at once must not both succeed
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
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
    locked.stage = to
    locked.stage_changed_at = at
    setattr(locked, STAGE_TIMESTAMP[to], at)
    if amount is not None:
        locked.deal_value = amount
    if reason_obj is not None:
        locked.last_reason = reason_obj
    if to == Stage.MQL:
        locked.mql_count += 1
        locked.first_mql_at = locked.first_mql_at or at
        locked.first_sales_touch_at = None
    if to == Stage.RECYCLED:
        # back with marketing: the lead leaves the rep's queue; a re-MQL is routed afresh
        locked.owner = None
        locked.assigned_at = None
    locked.save()
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
    if to == Stage.MQL:
        from leads.routing import lead_route

        if locked.owner_id is None:
            lead_route(lead=locked, now=at)
        signals.lead_became_mql.send(sender=Lead, lead=locked, at=at, by=by, system=system)
    signals.lead_stage_changed.send(sender=Lead, lead=locked, change=change)
    if to == Stage.WON:
        from leads.tasks import won_announce

        transaction.on_commit(lambda: won_announce.delay(locked.id))
    _copy_state(source=locked, target=lead)
    return lead


def _copy_state(*, source: Lead, target: Lead) -> None:
    if source is not target:
        target.__dict__.update(
            {f.attname: getattr(source, f.attname) for f in Lead._meta.concrete_fields}
        )


def lead_accept(*, lead: Lead, by: User, note: str = "") -> Lead:
    return lead_move(lead=lead, to=Stage.SAL, by=by, note=note)


def lead_reject(*, lead: Lead, by: User, reason: Reason | str | None, note: str = "") -> Lead:
    return lead_move(lead=lead, to=Stage.REJECTED, by=by, reason=reason, note=note)


def lead_recycle(*, lead: Lead, by: User, reason: Reason | str | None, note: str = "") -> Lead:
    return lead_move(lead=lead, to=Stage.RECYCLED, by=by, reason=reason, note=note)


# --- intake --------------------------------------------------------------------------------------


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


@dataclass
class IntakeResult:
    lead: Lead
    created: bool
    changed: bool


@transaction.atomic
def lead_intake(*, data: dict[str, Any], by: User | None = None, system: str = "") -> IntakeResult:
    """Create or update one lead from outside data (a form, the API, a CRM), matched by external id
    then email. Known fields are set, anything else lands in `attributes`."""
    if by is not None:
        require(by, Action.LEAD_CREATE)
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
    lead = lead_find(email=email, external_id=external_id)
    created = lead is None
    lead = lead or Lead()
    before = model_to_dict(lead) if not created else {}
    if email and not lead.email:
        lead.email = email
    if external_id and not lead.external_id:
        lead.external_id = external_id
    for field in LEAD_TEXT_FIELDS:
        if field in data:
            setattr(lead, field, str(data.pop(field) or "").strip())
    if "company_size" in data:
        size = data.pop("company_size")
        try:
            lead.company_size = None if size in (None, "") else int(size)
        except (TypeError, ValueError):
            raise DomainError(
                "Company size must be a whole number.", field="company_size"
            ) from None
        if lead.company_size is not None and lead.company_size < 0:
            raise DomainError("Company size cannot be negative.", field="company_size")
    if "source" in data:
        lead.source = source_for(data.pop("source"))
    if "campaign" in data:
        name = data.pop("campaign")
        lead.campaign = (
            Campaign.objects.filter(Q(name=name) | Q(utm_campaign=name)).first() if name else None
        )
    if lead.campaign_id is None and lead.utm_campaign:
        lead.campaign = campaign_for_utm(lead.utm_campaign)
    extra = data.pop("attributes", None) or {}
    if not isinstance(extra, dict):
        raise DomainError("Attributes must be an object of key/value pairs.", field="attributes")
    extra.update(data)
    if extra:
        lead.attributes = {**lead.attributes, **{normalise_key(k): v for k, v in extra.items()}}
    changed = created or model_to_dict(lead) != before
    if changed:
        lead.save()
        from leads.scoring.services import lead_score_refresh

        lead_score_refresh(lead=lead)
    return IntakeResult(lead=lead, created=created, changed=changed)


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
    """One interaction. The first sales touch after an MQL is stamped on the lead (speed-to-lead)."""
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
    touchpoint = Touchpoint.objects.create(
        lead=lead,
        kind=kind,
        occurred_at=occurred_at,
        campaign=campaign,
        metadata=metadata,
        created_by=by,
    )
    if kind in FIRST_TOUCH_KINDS and lead.mql_at and occurred_at >= lead.mql_at:
        # conditional update: of two touches racing, the first one written wins
        Lead.objects.filter(pk=lead.pk, first_sales_touch_at=None).update(
            first_sales_touch_at=occurred_at
        )
        lead.refresh_from_db(fields=["first_sales_touch_at"])
    signals.touchpoint_recorded.send(sender=Touchpoint, touchpoint=touchpoint, lead=lead)
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
    duplicate is kept in a MergeRecord. The survivor keeps its own stage."""
    require(by, Action.LEAD_MERGE)
    if survivor.pk == duplicate.pk:
        raise DomainError("A lead cannot be merged into itself.")
    locked = {
        lead.pk: lead
        for lead in Lead.objects.select_for_update().filter(pk__in=[survivor.pk, duplicate.pk])
    }
    if len(locked) != 2:
        raise DomainError("One of the two leads no longer exists.")
    keep, gone = locked[survivor.pk], locked[duplicate.pk]
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
    Touchpoint.objects.filter(lead=gone).update(lead=keep)
    StageChange.objects.filter(lead=gone).update(lead=keep)
    Assignment.objects.filter(lead=gone).update(lead=keep)
    MergeRecord.objects.filter(survivor=gone).update(survivor=keep)
    if not Announcement.objects.filter(lead=keep).exists():
        Announcement.objects.filter(lead=gone).update(lead=keep)
    MergeRecord.objects.create(
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
    keep.save()
    # the survivor's touchpoints changed other than through touchpoint_record
    from leads.scoring.services import lead_score_refresh

    lead_score_refresh(lead=keep, full=True)
    _copy_state(source=keep, target=survivor)
    return survivor
