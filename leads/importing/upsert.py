"""Lead intake for many leads at once (the API's bulk upsert): each item is what `lead_intake`
takes, matched by external id then email, and answered on its own: created, updated, unchanged
or an error that changes nothing. The same rules as lead_intake (leads.intake checks and applies
the fields), set-based: one locking read of the matched leads, one INSERT, one UPDATE, the events
in one go, scoring in Python per lead at one instant (leads.importing.scoring); the leads that
now meet the MQL definition then move one by one through the lifecycle service.

The same lead twice in one request (the same email or external id, or two items matching one
lead) is ambiguous: the first item counts, every later one is an error naming it."""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from leads.events import NewEvent, events_record_bulk
from leads.importing.rowsql import Blank, rows_insert, rows_instances, rows_update
from leads.importing.scoring import SCORE_ATTNAMES, BatchScorer, Scored
from leads.intake import (
    EDITABLE_FIELDS,
    _apply,
    _clean_changes,
    changed_attnames,
    intake_keys,
    lead_created_event,
    lead_updated_event,
)
from leads.lifecycle import qualify_if_crossing
from leads.models import LEAD_TEXT_FIELDS, Campaign, Lead, Source, Touchpoint, normalise_key

MAX_ITEMS = 1000
CREATED, UPDATED, UNCHANGED, ERROR = "created", "updated", "unchanged", "error"
LEAD_KEYS = frozenset({"email", "external_id"})
ITEM_FIELDS = LEAD_KEYS | EDITABLE_FIELDS
_LEAD_FIELD_NAMES = frozenset(f.name for f in Lead._meta.get_fields())
_STRING_FIELDS = frozenset({*LEAD_TEXT_FIELDS, "email", "source"})
_ABSENT = object()
_MAX_LENGTH = {"email": 254, "external_id": Lead._meta.get_field("external_id").max_length}
MAX_INTEGER = 2_147_483_647  # PostgreSQL's integer
MAX_ID = 2**63 - 1
_LEAD_ATTNAMES = tuple(f.attname for f in Lead._meta.concrete_fields)
_new_lead = Blank(Lead)


def has_nul(value: Any) -> bool:
    """A NUL character anywhere in a JSON value (PostgreSQL stores none, in text or jsonb)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


@dataclass(slots=True)
class ItemResult:
    """The answer for one item of a bulk request."""

    index: int
    result: str
    lead_id: int | None = None
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.result == ERROR:
            return {"index": self.index, "result": ERROR, "errors": self.errors}
        return {"index": self.index, "result": self.result, "id": self.lead_id}


def item_error(index: int, error: DomainError) -> ItemResult:
    return ItemResult(index, ERROR, errors={error.field or "non_field_errors": [error.message]})


def check_items(items: Any, *, name: str) -> list:
    """The request's list: a list of at most MAX_ITEMS, refused whole before anything is done
    (an empty list is a request that does nothing)."""
    if not isinstance(items, list):
        raise DomainError(f"Send a list of {name}.", field=name)
    for index, item in enumerate(items):
        # not an item at all: the request is malformed, not one of its items wrong
        if not isinstance(item, dict):
            raise DomainError("Each item is a JSON object.", field=f"{name}.{index}")
    if len(items) > MAX_ITEMS:
        raise DomainError(
            f"At most {MAX_ITEMS} {name} per request ({len(items)} sent); split the batch.",
            field=name,
        )
    return items


def actor_check(by: User | None, system: str, action: Action) -> None:
    if by is not None:
        require(by, action)
    elif not system:
        raise DomainError("A lead change needs a person or a named system.")


@dataclass(slots=True)
class _Item:
    index: int
    email: str | None
    external_id: str | None
    clean: dict[str, Any]
    source: Any = _ABSENT  # a name, None, or absent
    campaign: Any = _ABSENT  # an id, a name or utm_campaign, None, or absent


def _parse(index: int, item: dict) -> _Item:
    """One item checked as lead_intake checks it, with no query (sources and campaigns are
    looked up for the whole request)."""
    for key, value in item.items():
        if key not in ITEM_FIELDS:
            if key in _LEAD_FIELD_NAMES:
                raise DomainError(
                    f"{key} cannot be set here: stages, owners and scores change only through "
                    "their own actions.",
                    field=key,
                )
            raise DomainError("Unknown field; put your own data under attributes.", field=str(key))
        if key in _STRING_FIELDS and value is not None and not isinstance(value, str):
            raise DomainError("Must be a string.", field=key)
        if key == "external_id" and not isinstance(value, str | int | type(None)):
            raise DomainError("Must be a string.", field=key)
        if key == "campaign" and (
            isinstance(value, bool) or not isinstance(value, str | int | type(None))
        ):
            raise DomainError("A campaign id, name or utm_campaign.", field=key)
        if key == "company_size" and isinstance(value, bool):
            raise DomainError("Company size must be a whole number.", field=key)
        if key == "company_size" and isinstance(value, int) and value > MAX_INTEGER:
            raise DomainError(f"Company size is at most {MAX_INTEGER}.", field=key)
        if key == "campaign" and isinstance(value, int) and not 0 < value <= MAX_ID:
            raise DomainError(f"There is no campaign with id {value}.", field=key)
        if key in _MAX_LENGTH and len(str(value or "").strip()) > _MAX_LENGTH[key]:
            raise DomainError(f"At most {_MAX_LENGTH[key]} characters.", field=key)
        if has_nul(value):
            raise DomainError("Text cannot contain a NUL character.", field=key)
    data = dict(item)
    email, external_id = intake_keys(data)
    source = data.pop("source", _ABSENT)
    campaign = data.pop("campaign", _ABSENT)
    if isinstance(campaign, str):
        campaign = campaign.strip() or None
    clean = _clean_changes(data)
    return _Item(index, email, external_id, clean, source, campaign)


class _Campaigns:
    """The campaigns a request names (by id, name or utm_campaign) and those its UTM values
    link to, read in one query and picked in the order `.first()` would pick them."""

    def __init__(self, items: list[_Item]):
        ids, names, utms = set(), set(), set()
        for it in items:
            if isinstance(it.campaign, int):
                ids.add(it.campaign)
            elif isinstance(it.campaign, str):
                names.add(it.campaign)
            utm = it.clean.get("utm_campaign")
            if utm:
                utms.add(utm.strip().lower())
        self.rows: list[Campaign] = []
        if ids or names or utms:
            query = Q(pk__in=ids) | Q(name__in=names) | Q(utm_campaign__in=names)
            if utms:
                query |= Q(utm_lower__in=utms)
            self.rows = list(
                Campaign.objects.annotate(utm_lower=Lower("utm_campaign")).filter(query)
            )
        self.by_id = {c.pk: c for c in self.rows}

    def named(self, ref: Any) -> Campaign | None:
        if isinstance(ref, int):
            found = self.by_id.get(ref)
            if found is None:
                raise DomainError(f"There is no campaign with id {ref}.", field="campaign")
            return found
        return next((c for c in self.rows if ref in (c.name, c.utm_campaign)), None)

    def by_utm(self, utm_campaign: str | None) -> Campaign | None:
        """campaign_for_utm, from the rows read."""
        if not utm_campaign:
            return None
        wanted = utm_campaign.strip().lower()
        return next((c for c in self.rows if c.utm_campaign.lower() == wanted), None)


def _sources(items: list[_Item], *, create: bool) -> dict[str, Source]:
    """source_for for every name the request uses: existing sources read, missing ones created
    (the first spelling seen is the name) unless `create` is false."""
    names: dict[str, str] = {}
    for it in items:
        if isinstance(it.source, str) and normalise_key(it.source):
            names.setdefault(normalise_key(it.source), it.source.strip())
    if not names:
        return {}
    found = {s.key: s for s in Source.objects.filter(key__in=names)}
    missing = [key for key in names if key not in found]
    if missing and create:
        Source.objects.bulk_create(
            [Source(key=key, name=names[key]) for key in missing], ignore_conflicts=True
        )
        found.update({s.key: s for s in Source.objects.filter(key__in=missing)})
    return found


@dataclass
class _Written:
    results: dict[int, ItemResult] = field(default_factory=dict)
    crossing: list[Scored] = field(default_factory=list)
    leads: dict[int, Lead] = field(default_factory=dict)  # item index -> lead


def leads_locked(
    attnames: tuple[str, ...],
    *,
    ids: Iterable[int] = (),
    external_ids: Iterable[str] = (),
    emails: Iterable[str] = (),
) -> list[Lead]:
    """Lock the leads with any of these ids, external ids or emails, in id order (two bulk
    writers then cannot deadlock), read as instances holding `attnames`."""
    return rows_instances(
        model=Lead,
        attnames=attnames,
        rows=Lead.objects.select_for_update()
        .filter(
            Q(pk__in=set(ids)) | Q(external_id__in=set(external_ids)) | Q(email__in=set(emails))
        )
        .order_by("pk")
        .values_list(*attnames),
    )


def _match(items: list[_Item], results: dict[int, ItemResult]) -> tuple[list, dict, dict]:
    """Lock the leads the items name (id order: two writers cannot deadlock) and pair each item
    with its lead (None: a new lead); duplicates within the request become errors."""
    locked = leads_locked(
        _LEAD_ATTNAMES,
        external_ids=(it.external_id for it in items if it.external_id),
        emails=(it.email for it in items if it.email),
    )
    by_external_id = {lead.external_id: lead for lead in locked if lead.external_id}
    by_email = {lead.email: lead for lead in locked if lead.email}
    seen: dict[Any, int] = {}
    pairs: list[tuple[_Item, Lead | None]] = []
    for it in items:
        lead = by_external_id.get(it.external_id) if it.external_id else None
        if lead is None and it.email:
            lead = by_email.get(it.email)
        keys = [("external_id", it.external_id), ("email", it.email)]
        if lead is not None:
            keys.append(("", lead.pk))
        first = next((seen[k] for k in keys if k[1] and k in seen), None)
        if first is not None:
            name = next((k[0] for k in keys if k[1] and k in seen), "")
            results[it.index] = item_error(
                it.index,
                DomainError(
                    f"The same lead as item {first}; a lead may appear once per request.",
                    field=name or "non_field_errors",
                ),
            )
            continue
        for k in keys:
            if k[1]:
                seen[k] = it.index
        pairs.append((it, lead))
    return pairs, by_external_id, by_email


def _insert_order(lead: Lead) -> tuple[str, str]:
    return (lead.email or "", lead.external_id or "")


def _write(
    items: list[_Item],
    *,
    by: User | None,
    system: str,
    now: datetime,
    new_sources: bool,
    written: _Written,
) -> None:
    results = written.results
    pairs, _, by_email = _match(items, results)
    # identity first: an item refused here creates no source
    ready: list[tuple[_Item, Lead | None]] = []
    for it, lead in pairs:
        if lead is not None and it.email and not lead.email:
            other = by_email.get(it.email)
            if other is not None and other.pk != lead.pk:
                results[it.index] = item_error(
                    it.index,
                    DomainError(
                        f"{it.email} belongs to another lead than external id "
                        f"{lead.external_id!r}; merge the two leads first.",
                        field="email",
                    ),
                )
                continue
        ready.append((it, lead))
    campaigns = _Campaigns([it for it, _ in ready])
    staged: list[tuple[_Item, Lead | None, dict]] = []
    for it, lead in ready:
        # a copy: a retried batch starts again from the item as parsed
        clean = dict(it.clean)
        if it.campaign is not _ABSENT:
            try:
                found = None if it.campaign is None else campaigns.named(it.campaign)
            except DomainError as error:
                results[it.index] = item_error(it.index, error)
                continue
            clean["campaign_id"] = found.pk if found else None
        staged.append((it, lead, clean))
    sources = _sources([it for it, _, _ in staged], create=new_sources)

    new: list[tuple[_Item, Lead]] = []
    changed: list[tuple[_Item, Lead, dict]] = []
    for it, lead, clean in staged:
        if it.source is not _ABSENT:
            key = normalise_key(it.source or "")
            if key and key not in sources:
                results[it.index] = item_error(
                    it.index,
                    DomainError(f"There is no source with key “{key}”.", field="source"),
                )
                continue
            clean["source_id"] = sources[key].pk if key else None
        if lead is None:
            lead = _new_lead(
                email=it.email, external_id=it.external_id, created_at=now, stage_changed_at=now
            )
            _apply(lead, clean, campaign_by_utm=campaigns.by_utm)
            new.append((it, lead))
            continue
        if it.email and not lead.email:
            clean["email"] = it.email
        if it.external_id and not lead.external_id:
            clean["external_id"] = it.external_id
        changes = _apply(lead, clean, campaign_by_utm=campaigns.by_utm)
        written.leads[it.index] = lead
        if changes:
            changed.append((it, lead, changes))
        else:
            results[it.index] = ItemResult(it.index, UNCHANGED, lead.pk)

    scorer = BatchScorer(now=now)
    model = scorer.model
    source_keys = {s.pk: s.key for s in sources.values()}
    if model is not None and model.uses_source:
        wanted = {lead.source_id for _, lead, _ in changed if lead.source_id} - set(source_keys)
        if wanted:
            source_keys.update(Source.objects.filter(pk__in=wanted).values_list("pk", "key"))
    reread = [lead.pk for _, lead, _ in changed if scorer.needs_touchpoints(lead, refresh=True)]
    touchpoints: dict[int, list] = {}
    if reread and model is not None and model.kinds:
        rows = (
            Touchpoint.objects.filter(lead_id__in=reread, kind__in=model.kinds)
            .order_by()
            .values_list("lead_id", "kind", "campaign_id", "metadata", "occurred_at")
        )
        for lead_id, *row in rows:
            touchpoints.setdefault(lead_id, []).append(tuple(row))

    scored: dict[int, Scored | None] = {}
    for it, lead in new:
        scored[it.index] = scorer.refresh(lead, source_key=source_keys.get(lead.source_id))
    for it, lead, _ in changed:
        scored[it.index] = scorer.refresh(
            lead,
            source_key=source_keys.get(lead.source_id),
            touchpoints=touchpoints.get(lead.pk, ()),
        )

    # in key order: two requests creating the same new leads wait on the unique indexes in the
    # same order (the second then fails and retries), never on each other in a circle
    rows_insert(objs=sorted((lead for _, lead in new), key=_insert_order))
    attnames: dict[str, None] = {}
    for _, _, changes in changed:
        attnames.update(dict.fromkeys(changed_attnames(changes)))
    if model is not None and changed:
        attnames.update(dict.fromkeys(SCORE_ATTNAMES))
    for _, lead, _ in changed:
        lead.updated_at = now
    rows_update(
        model=Lead,
        attnames=list(attnames),
        rows=[[lead.pk, *(getattr(lead, a) for a in attnames)] for _, lead, _ in changed],
    )

    events: list[NewEvent] = []
    for it, lead in new:
        results[it.index] = ItemResult(it.index, CREATED, lead.pk)
        written.leads[it.index] = lead
        events.append(lead_created_event(lead=lead, by=by, system=system, at=now))
    for it, lead, changes in changed:
        results[it.index] = ItemResult(it.index, UPDATED, lead.pk)
        events.append(
            lead_updated_event(lead_id=lead.pk, changes=changes, by=by, system=system, at=now)
        )
    by_index = {it.index: lead for it, lead in new} | {it.index: lead for it, lead, _ in changed}
    # each lead's own events in the order lead_intake appends them: its change, then its score
    ordered: list[NewEvent] = []
    for event, index in zip(
        events, [it.index for it, _ in new] + [it.index for it, _, _ in changed], strict=True
    ):
        ordered.append(event)
        s = scored.get(index)
        if s is not None and s.event is not None:
            ordered.append(replace(s.event, lead_id=by_index[index].pk))
        if s is not None and s.update.crosses:
            written.crossing.append(s)
    events_record_bulk(ordered)


@transaction.atomic
def leads_upsert_bulk(
    *, items: list[Any], by: User | None = None, system: str = "", new_sources: bool = True
) -> list[ItemResult]:
    """Create or update up to MAX_ITEMS leads from outside data, each as lead_intake would
    (matched by external id then email, only changed fields written, one lead.created or
    lead.updated event each, scored, an MQL when it now crosses the definition). Returns one
    answer per item, in order; a bad item is an error and changes nothing. With
    new_sources=False an unknown source key is an error instead of a new source (the API)."""
    actor_check(by, system, Action.LEAD_CREATE)
    check_items(items, name="leads")
    now = timezone.now()
    parse_errors: dict[int, ItemResult] = {}
    parsed: list[_Item] = []
    for index, item in enumerate(items):
        try:
            parsed.append(_parse(index, item))
        except DomainError as error:
            parse_errors[index] = item_error(index, error)
    written = _Written()
    for attempt in (1, 2):
        written = _Written()
        try:
            with transaction.atomic():
                _write(
                    parsed, by=by, system=system, now=now, new_sources=new_sources, written=written
                )
            break
        except IntegrityError:
            # another writer created one of these leads between our read and our insert: the
            # batch was rolled back whole; read again (it is matched now) and write once more
            if attempt == 2:
                raise DomainError(
                    "These leads were being changed by another request at the same time; "
                    "send the batch again."
                ) from None
    # the crossings move one by one: a move routes the lead and keeps its score snapshot
    for s in written.crossing:
        qualify_if_crossing(lead=s.update.lead, update=s.update)
    results = {**parse_errors, **written.results}
    return [results[index] for index in range(len(items))]
