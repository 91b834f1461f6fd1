"""Every write to a lead goes through the services of this app: pages, API, admin, commands,
imports and tasks. This module holds touchpoints and merges and is the one entry point: the
lifecycle (leads.lifecycle) and lead data (leads.intake) services are importable from here too.

Each service locks the lead row (select_for_update), writes only the fields that changed and
appends its events (leads.events) in one transaction. The chain is explicit: a touchpoint or a
changed field is scored (leads.scoring.services returns what changed and whether the lead now
crosses into MQL), the crossing is a move (leads.lifecycle.lead_move), and a move into MQL routes
the lead (leads.routing). What must happen after commit (the won announcement, SLA clocks,
webhooks) reacts to the events through the outbox.
"""

import json
from datetime import datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.permissions import Action, require
from content import models as content_models
from leads.events import event_record, json_value
from leads.intake import (  # noqa: F401  (the services' one entry point)
    EDITABLE_FIELDS,
    IntakeResult,
    campaign_for_utm,
    changed_attnames,
    lead_created_event,
    lead_find,
    lead_intake,
    lead_update,
    lead_updated_event,
    source_for,
    touchpoint_names_content,
)
from leads.lifecycle import (  # noqa: F401
    ALLOWED_MOVES,
    DEAL_VALUE_REQUIRED,
    REASON_REQUIRED,
    STAGE_TIMESTAMP,
    copy_state,
    lead_accept,
    lead_lock,
    lead_move,
    lead_recycle,
    lead_reject,
    leads_qualify,
    qualify_if_crossing,
    stage_change_events,
    stage_changes_record_bulk,
)
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
    StageChange,
    Touchpoint,
    TouchpointKind,
)
from leads.scoring.services import (
    lead_lock_for_scoring,
    lead_score_refresh,
    lead_score_touchpoint,
)

# --- touchpoints ---------------------------------------------------------------------------------


def touchpoint_actor_check(*, lead: Lead, kind: str, by: User | None, system: str = "") -> None:
    """Whether `by` (or the named system) may log a touchpoint of `kind` on `lead`: marketing
    kinds for marketing roles, sales kinds for sales roles, a rep only on a lead he owns."""
    if by is None:
        if not system:
            raise DomainError("A touchpoint needs a person or a named system.")
        return
    is_sales = kind in SALES_TOUCHPOINT_KINDS
    require(by, Action.TOUCHPOINT_SALES if is_sales else Action.TOUCHPOINT_MARKETING)
    # a rep works their own queue: their calls on it are what the SLA clock measures
    if is_sales and by.effective_role == Role.SALES_REP and lead.owner_id != by.pk:
        raise DomainError(
            f"{lead.display_name} is not assigned to you; only its owner or a sales manager "
            "can log sales activity on it."
        )


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
    touchpoint_actor_check(lead=lead, kind=kind, by=by, system=system)
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
    # the owner again under the lock: the lead may have been reassigned meanwhile
    touchpoint_actor_check(lead=locked, kind=kind, by=by, system=system)
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
            **({"content": True} if touchpoint_names_content(kind, metadata) else {}),
        },
    )
    if first_touch:
        # the row is locked: no other touch can have stamped it meanwhile
        Lead.objects.filter(pk=locked.pk).update(first_sales_touch_at=occurred_at)
        locked.first_sales_touch_at = occurred_at
    update = lead_score_touchpoint(locked=locked, touchpoint=touchpoint, now=now)
    copy_state(source=locked, target=lead)
    qualify_if_crossing(lead=lead, update=update)
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
        # what sales said and shared about it (content/): objections, flags, stories, shares
        **{
            name: model.objects.filter(lead=gone).update(lead=keep)
            for name, model in content_models.LEAD_ROWS.items()
        },
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
    keep.save(update_fields=[*changed_attnames(filled)])
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
    qualify_if_crossing(lead=keep, update=update)
    copy_state(source=keep, target=survivor)
    return survivor
