"""Lead data from people and other systems: intake (create or update, matched by external id then
email) and updates of a lead's own fields. Both lock the row, write only what differs with one
event, rescore, and make a lead that now meets the MQL definition an MQL.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from leads.events import NewEvent, event_record_from, json_value
from leads.lifecycle import copy_state, lead_lock, qualify_if_crossing
from leads.models import (
    LEAD_TEXT_FIELDS,
    Campaign,
    EventType,
    Lead,
    Source,
    TouchpointKind,
    normalise_email,
    normalise_key,
)
from leads.scoring.services import lead_score_refresh


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
    return lead_lock(found) if found is not None else None


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


# a column's field name ("source_id" -> "source", "external_id" stays): the events name fields
FIELD_NAMES = {f.attname: f.name for f in Lead._meta.concrete_fields}


def _apply(
    lead: Lead,
    clean: dict[str, Any],
    *,
    campaign_by_utm: Callable[[str], Campaign | None] = campaign_for_utm,
) -> dict[str, list[Any]]:
    """Set the values that differ on `lead`; returns {field: [old, new]} of what changed.
    `campaign_by_utm` finds a UTM link's campaign (a bulk writer passes a preloaded lookup)."""
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
            changes[FIELD_NAMES[attname]] = [old, value]
            setattr(lead, attname, value)
    # a lead from a campaign's UTM link belongs to that campaign
    if lead.campaign_id is None and lead.utm_campaign and "utm_campaign" in changes:
        campaign = campaign_by_utm(lead.utm_campaign)
        if campaign is not None:
            changes["campaign"] = [None, campaign.pk]
            lead.campaign_id = campaign.pk
    return changes


def changed_attnames(changes: dict[str, list[Any]]) -> list[str]:
    fields = {f.name: f.attname for f in Lead._meta.concrete_fields}
    return [fields[name] for name in changes] + ["updated_at"]


# the fields whose change regroups a lead in the KPIs (kpis.rollups keeps them on its rows)
REGROUPING_FIELDS = frozenset({"source", "campaign"})


def lead_updated_event(
    *, lead_id: int, changes: dict[str, list[Any]], by: User | None, system: str, at: datetime
) -> NewEvent:
    payload: dict[str, Any] = {"changes": json_value(changes)}
    if REGROUPING_FIELDS & set(changes):
        # a flag the outbox keys on: only these changes regroup the lead in the KPIs
        payload["source_or_campaign"] = True
    return NewEvent(
        type=EventType.LEAD_UPDATED,
        lead_id=lead_id,
        occurred_at=at,
        payload=payload,
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


def _save_changes(
    locked: Lead, changes: dict[str, list[Any]], *, by: User | None, system: str, at: datetime
) -> None:
    """Write the changed fields of a locked lead with their event; rescore, and qualify it when
    it now crosses into MQL."""
    if not changes:
        return
    locked.save(update_fields=changed_attnames(changes))
    event_record_from(
        lead_updated_event(lead_id=locked.pk, changes=changes, by=by, system=system, at=at),
        by=by,
    )
    qualify_if_crossing(lead=locked, update=lead_score_refresh(locked=locked, now=at))


def intake_keys(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """Pop and check the keys intake matches on: (email, external id), at least one of them."""
    email = normalise_email(data.pop("email", None))
    external_id = (str(data.pop("external_id", "") or "")).strip() or None
    if email is None and external_id is None:
        raise DomainError("A lead needs an email or an external id.", field="email")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise DomainError(f"“{email}” is not a valid email address.", field="email") from None
    return email, external_id


# the metadata keys by which a content download names a library asset (content.sharing reads them)
CONTENT_ASSET_KEYS = ("asset_id", "asset_url", "url")


def touchpoint_names_content(kind: str, metadata: dict | None) -> bool:
    """Whether a touchpoint may name a library asset the lead engaged with: its
    touchpoint.recorded event then carries `"content": true`, so that only those queue the
    content reaction (settings.OUTBOX_REACTIONS["touchpoint.recorded[content]"])."""
    return kind == TouchpointKind.CONTENT_DOWNLOAD and any(
        (metadata or {}).get(key) not in (None, "") for key in CONTENT_ASSET_KEYS
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
    email, external_id = intake_keys(data)
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
            event_record_from(lead_created_event(lead=lead, by=by, system=system, at=now), by=by)
    changes: dict[str, list[Any]] = {}
    if not created:
        if email and not lead.email:
            if Lead.objects.filter(email=email).exclude(pk=lead.pk).exists():
                raise DomainError(
                    f"{email} belongs to another lead than external id {lead.external_id!r}; "
                    "merge the two leads first.",
                    field="email",
                )
            clean["email"] = email
        if external_id and not lead.external_id:
            clean["external_id"] = external_id
        changes = _apply(lead, clean)
        _save_changes(lead, changes, by=by, system=system, at=now)
    if created:
        qualify_if_crossing(lead=lead, update=lead_score_refresh(locked=lead, now=now))
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
    locked = lead_lock(lead)
    now = timezone.now()
    _save_changes(locked, _apply(locked, clean), by=by, system=system, at=now)
    copy_state(source=locked, target=lead)
    return lead
