"""One pass over a file's rows, batch by batch: parse and check each row, match the batch to
existing leads with one query, then bulk insert, bulk update and append the stage history."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q

from alignment.lib.errors import DomainError
from alignment.models import User
from leads.events import events_record_bulk
from leads.importing.mapping import MAX_LENGTHS, Mapping, Plan
from leads.importing.result import ImportResult, RowError
from leads.importing.values import (
    CampaignLookup,
    CellError,
    attribute_converter,
    field_converters,
    moment,
)
from leads.intake import FIELD_NAMES
from leads.models import Campaign, Lead, Source, Stage, StageChange
from leads.scoring.services import leads_rescore
from leads.services import (
    lead_created_event,
    lead_updated_event,
    leads_qualify,
    stage_changes_record_bulk,
)

BY_SYSTEM = "import"
# a historical outcome only moves leads the pipeline has not started working on
MOVABLE_STAGES = frozenset({Stage.NEW, Stage.NURTURING})
OUTCOME_AT_FIELD = {Stage.WON: "won_at", Stage.LOST: "lost_at"}
# where a lead came from is first-touch attribution: an import fills it, never overwrites it
ATTRIBUTION_FIELDS = frozenset(
    {
        "source_id",
        "campaign_id",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
    }
)
ATTNAMES = {"campaign": "campaign_id"}


@dataclass(slots=True)
class _Row:
    row: int
    external_id: str | None
    email: str | None
    values: dict
    attributes: dict
    source: tuple[str, str] | None
    utm_campaign_id: int | None
    outcome: str | None
    outcome_at: datetime | None


@dataclass
class _Batch:
    new: list[Lead] = field(default_factory=list)
    updated: dict[frozenset, list[Lead]] = field(default_factory=dict)
    unchanged: int = 0
    stage_changes: list[StageChange] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    won: int = 0
    lost: int = 0
    outcome_kept: int = 0
    seen_leads: dict[int, int] = field(default_factory=dict)
    new_source_keys: set[str] = field(default_factory=set)
    qualified: int = 0
    # lead id -> {field: [old, new]}, for the lead.updated events
    changes: dict[int, dict[str, list]] = field(default_factory=dict)

    @property
    def updated_count(self) -> int:
        return sum(len(leads) for leads in self.updated.values())


def _same(old: object, new: object) -> bool:
    # 1, 1.0 and True are equal in Python but not the same value in an attribute
    return type(old) is type(new) and old == new


class Importer:
    """One pass over the rows of one file."""

    def __init__(
        self,
        *,
        plan: Plan,
        mapping: Mapping,
        by: User | None,
        result: ImportResult,
        write: bool,
        now: datetime,
    ):
        self.plan = plan
        self.by = by
        self.result = result
        self.write = write
        self.now = now
        self.width = len(plan.header)
        self.missing = mapping.missing
        self.filename = result.filename

        campaigns = CampaignLookup(
            list(Campaign.objects.order_by().values_list("id", "name", "utm_campaign"))
        )
        self.campaigns = campaigns
        converters = field_converters(campaigns)
        self.field_cells = [
            (name, index, column, converters[name]) for name, index, column in plan.fields
        ]
        self.attribute_cells = [
            (key, index, column, attribute_converter(kind, mapping.decimal))
            for key, index, column, kind in plan.attributes
        ]
        self.constants: dict[str, object] = {}
        for name, text in mapping.constants.items():
            if text.lower() in self.missing:
                continue
            try:
                self.constants[name] = converters[name](text)
            except CellError as exc:
                raise DomainError(f"Mapping: constants.{name}: {exc}.", field="mapping") from None
        mapped = {name for name, _, _ in plan.fields} | set(self.constants)
        self.derive_campaign = "campaign" not in mapped and "utm_campaign" in mapped

        spec = mapping.external_id
        self.external_id_index = plan.external_id_index
        self.external_id_by_row = bool(spec and spec.row_number)
        self.external_id_prefix = spec.prefix if spec else ""
        self.external_id_column = (
            plan.header[plan.external_id_index] if plan.external_id_index is not None else ""
        )
        self.email_column = next((c for n, _, c in plan.fields if n == "email"), "")
        self.outcome = mapping.outcome
        self.outcome_index = plan.outcome_index
        self.outcome_at_index = plan.outcome_at_index

        self.seen_external_ids: dict[str, int] = {}
        self.seen_emails: dict[str, int] = {}
        self.seen_leads: dict[int, int] = {}
        self.pending_source_keys: set[str] = set()

    # --- one row -------------------------------------------------------------------------------

    def parse(self, row: int, cells: list[str]) -> _Row | RowError | list[RowError]:
        if len(cells) != self.width:
            word = "many" if len(cells) > self.width else "few"
            return RowError(
                row,
                "",
                f"too {word} columns: {len(cells)} values, the header has {self.width} "
                "(a delimiter or line break in an unquoted value?)",
            )
        missing = self.missing
        errors: list[RowError] = []
        values: dict = {}
        for name, index, column, convert in self.field_cells:
            text = cells[index].strip()
            if text.lower() in missing:
                continue
            try:
                values[name] = convert(text)
            except CellError as exc:
                errors.append(RowError(row, column, str(exc)))

        external_id = None
        if self.external_id_by_row:
            external_id = f"{self.external_id_prefix}{row}"
        elif self.external_id_index is not None:
            text = cells[self.external_id_index].strip()
            if text.lower() not in missing:
                external_id = self.external_id_prefix + text
                if len(external_id) > MAX_LENGTHS["external_id"]:
                    errors.append(
                        RowError(
                            row,
                            self.external_id_column,
                            f"the external id is longer than {MAX_LENGTHS['external_id']} "
                            "characters",
                        )
                    )

        outcome = outcome_at = None
        if self.outcome_index is not None:
            text = cells[self.outcome_index].strip()
            lowered = text.lower()
            if lowered in self.outcome.won:
                outcome = Stage.WON
            elif lowered in self.outcome.lost:
                outcome = Stage.LOST
            elif lowered not in missing and lowered not in self.outcome.open:
                expected = ", ".join(
                    sorted(self.outcome.won | self.outcome.lost | self.outcome.open)
                )
                errors.append(
                    RowError(
                        row,
                        self.plan.header[self.outcome_index],
                        f"unknown outcome value {text!r} (expected one of: {expected})",
                    )
                )
            if outcome and self.outcome_at_index is not None:
                text = cells[self.outcome_at_index].strip()
                if text.lower() not in missing:
                    try:
                        outcome_at = moment(text, now=self.now)
                    except CellError as exc:
                        errors.append(
                            RowError(row, self.plan.header[self.outcome_at_index], str(exc))
                        )

        attributes: dict = {}
        for key, index, column, convert in self.attribute_cells:
            text = cells[index].strip()
            if text.lower() in missing:
                continue
            try:
                attributes[key] = convert(text)
            except CellError as exc:
                errors.append(RowError(row, column, str(exc)))
        if errors:
            return errors

        email = values.pop("email", None)
        if email is None and external_id is None:
            return RowError(
                row,
                self.email_column or self.external_id_column,
                "no email and no external id: a lead needs at least one of them",
            )
        # the same lead twice in one file is ambiguous (which row is right?): the first row counts
        # and every later one is reported
        if external_id is not None and external_id in self.seen_external_ids:
            first = self.seen_external_ids[external_id]
            return RowError(
                row,
                self.external_id_column,
                f"external id {external_id!r} is also on row {first}; a lead may appear once per file",
            )
        if email is not None and email in self.seen_emails:
            first = self.seen_emails[email]
            return RowError(
                row,
                self.email_column,
                f"email {email} is also on row {first}; a lead may appear once per file",
            )
        if external_id is not None:
            self.seen_external_ids[external_id] = row
        if email is not None:
            self.seen_emails[email] = row

        for name, value in self.constants.items():
            values.setdefault(name, value)
        source = values.pop("source", None)
        utm_campaign_id = None
        if self.derive_campaign and values.get("utm_campaign"):
            utm_campaign_id = self.campaigns.by_utm_campaign(values["utm_campaign"])
        return _Row(
            row=row,
            external_id=external_id,
            email=email,
            values={ATTNAMES.get(name, name): value for name, value in values.items()},
            attributes=attributes,
            source=source,
            utm_campaign_id=utm_campaign_id,
            outcome=outcome,
            outcome_at=outcome_at,
        )

    # --- one batch -----------------------------------------------------------------------------

    def run_batch(self, records: list[tuple[int, list[str]]]) -> None:
        rows: list[_Row] = []
        errors: list[RowError] = []
        for row, cells in records:
            parsed = self.parse(row, cells)
            if isinstance(parsed, _Row):
                rows.append(parsed)
            elif isinstance(parsed, RowError):
                errors.append(parsed)
            else:
                errors.extend(parsed)
        batch = _Batch()
        if rows and self.write:
            for attempt in (1, 2):
                try:
                    with transaction.atomic():
                        batch = self._match_and_write(rows)
                    break
                except IntegrityError:
                    # another writer added one of these leads between our read and our insert:
                    # the batch was rolled back whole; read again and retry once
                    if attempt == 2:
                        raise DomainError(
                            f"Rows {rows[0].row} to {rows[-1].row} could not be written because "
                            "the same leads were being changed at the same time; run the import "
                            "again (rows already imported then count as unchanged)."
                        ) from None
        elif rows:
            batch = self._match_and_write(rows)

        errors.extend(batch.errors)
        errors.sort(key=lambda e: e.row)
        result = self.result
        result.add_errors(errors)
        result.processed_rows += len(records)
        result.created += len(batch.new)
        result.updated += batch.updated_count
        result.unchanged += batch.unchanged
        result.won += batch.won
        result.lost += batch.lost
        result.outcome_kept += batch.outcome_kept
        result.sources_created += len(batch.new_source_keys)
        result.qualified += batch.qualified
        self.seen_leads.update(batch.seen_leads)
        if not self.write:
            self.pending_source_keys |= batch.new_source_keys

    def _source_ids(self, rows: list[_Row], batch: _Batch) -> dict[str, int | None]:
        names: dict[str, str] = {}
        for r in rows:
            if r.source is not None:
                names.setdefault(*r.source)
        if not names:
            return {}
        ids: dict[str, int | None] = dict(
            Source.objects.filter(key__in=names).order_by().values_list("key", "id")
        )
        new = [key for key in names if key not in ids]
        if new and self.write:
            Source.objects.bulk_create(
                [Source(key=key, name=names[key]) for key in new], ignore_conflicts=True
            )
            ids.update(Source.objects.filter(key__in=new).order_by().values_list("key", "id"))
            batch.new_source_keys.update(new)
        elif new:
            batch.new_source_keys.update(set(new) - self.pending_source_keys)
        return ids

    def _match_and_write(self, rows: list[_Row]) -> _Batch:
        batch = _Batch()
        external_ids = [r.external_id for r in rows if r.external_id]
        emails = [r.email for r in rows if r.email]
        query = Q()
        if external_ids:
            query |= Q(external_id__in=external_ids)
        if emails:
            query |= Q(email__in=emails)
        matched = Lead.objects.filter(query)
        if self.write:
            # locked (in id order, so two imports cannot deadlock) until the batch commits: a move
            # or an intake committed meanwhile is read, not overwritten by a stale copy
            matched = matched.select_for_update().order_by("pk")
        existing = list(matched)
        by_external_id = {lead.external_id: lead for lead in existing if lead.external_id}
        by_email = {lead.email: lead for lead in existing if lead.email}
        source_ids = self._source_ids(rows, batch)

        for r in rows:
            lead, error = self._match(r, by_external_id, by_email, batch)
            if error is not None:
                batch.errors.append(error)
            elif lead is None:
                batch.new.append(self._new_lead(r, source_ids, batch))
            else:
                self._update_lead(lead, r, source_ids, batch)

        if self.write:
            self._write(batch)
        return batch

    def _write(self, batch: _Batch) -> None:
        """The batch's rows and their events, through the bulk forms of the lead services."""
        Lead.objects.bulk_create(batch.new, batch_size=1000)
        for fields, leads in batch.updated.items():
            Lead.objects.bulk_update(leads, sorted(fields), batch_size=1000)
        events = [
            lead_created_event(lead=lead, by=self.by, system=BY_SYSTEM, at=self.now)
            for lead in batch.new
        ]
        events += [
            lead_updated_event(
                lead_id=pk, changes=changes, by=self.by, system=BY_SYSTEM, at=self.now
            )
            for pk, changes in batch.changes.items()
        ]
        events_record_bulk(events)
        # an imported outcome is history: recorded, but nothing reacts (no announcement of a
        # win from years ago)
        stage_changes_record_bulk(batch.stage_changes, react=False)
        # bulk writes are scored set-based; the leads that now meet the MQL definition become
        # MQLs one by one through the lifecycle service, which routes them
        written = [lead.pk for lead in batch.new]
        written += [lead.pk for leads in batch.updated.values() for lead in leads]
        crossing = leads_rescore(lead_ids=sorted(set(written)))
        batch.qualified = leads_qualify(lead_ids=crossing, system=BY_SYSTEM)

    def _match(
        self, r: _Row, by_external_id: dict, by_email: dict, batch: _Batch
    ) -> tuple[Lead | None, RowError | None]:
        """The external id decides first; the email only finds a lead the id did not find."""
        lead = by_external_id.get(r.external_id) if r.external_id else None
        if lead is not None:
            other = by_email.get(r.email) if r.email else None
            if other is not None and other.pk != lead.pk:
                return None, RowError(
                    r.row,
                    self.email_column,
                    f"email {r.email} belongs to another lead than external id {r.external_id!r}",
                )
        elif r.email:
            lead = by_email.get(r.email)
            if (
                lead is not None
                and r.external_id
                and lead.external_id
                and lead.external_id != r.external_id
            ):
                return None, RowError(
                    r.row,
                    self.external_id_column,
                    f"email {r.email} belongs to the lead with external id {lead.external_id!r}, "
                    f"not {r.external_id!r}",
                )
        if lead is not None:
            first = self.seen_leads.get(lead.pk) or batch.seen_leads.get(lead.pk)
            if first is not None:
                return None, RowError(
                    r.row,
                    "",
                    f"matches the same lead as row {first}; a lead may appear once per file",
                )
            batch.seen_leads[lead.pk] = r.row
        return lead, None

    def _stage_change(self, lead: Lead, r: _Row, batch: _Batch) -> tuple[str, datetime]:
        at = r.outcome_at or self.now
        batch.stage_changes.append(
            StageChange(
                lead=lead,
                from_stage=lead.stage,
                to_stage=r.outcome,
                at=at,
                by=self.by,
                by_system=BY_SYSTEM,
                note=f"Historical outcome imported from {self.filename}, row {r.row}.",
            )
        )
        if r.outcome == Stage.WON:
            batch.won += 1
        else:
            batch.lost += 1
        lead.stage = r.outcome
        lead.stage_changed_at = at
        setattr(lead, OUTCOME_AT_FIELD[r.outcome], at)
        return OUTCOME_AT_FIELD[r.outcome], at

    def _new_lead(self, r: _Row, source_ids: dict, batch: _Batch) -> Lead:
        lead = Lead(
            external_id=r.external_id,
            email=r.email,
            attributes=r.attributes,
            created_at=self.now,
            stage=Stage.NEW,
            stage_changed_at=self.now,
            **r.values,
        )
        if r.source is not None:
            lead.source_id = source_ids.get(r.source[0])
        if lead.campaign_id is None and r.utm_campaign_id is not None:
            lead.campaign_id = r.utm_campaign_id
        if r.outcome:
            _, at = self._stage_change(lead, r, batch)
            # a lead with a historical outcome is not younger than that outcome
            lead.created_at = min(self.now, at)
        return lead

    def _update_lead(self, lead: Lead, r: _Row, source_ids: dict, batch: _Batch) -> None:
        changed: set[str] = set()
        values = dict(r.values)
        if r.source is not None:
            values["source_id"] = source_ids.get(r.source[0])
        if "campaign_id" not in values and r.utm_campaign_id is not None:
            values["campaign_id"] = r.utm_campaign_id
        if r.email and lead.email != r.email:
            values["email"] = r.email
        if r.external_id and not lead.external_id:
            values["external_id"] = r.external_id
        changes: dict[str, list] = {}
        for attname, value in values.items():
            current = getattr(lead, attname)
            if attname in ATTRIBUTION_FIELDS and current not in (None, ""):
                continue
            # in a dry run a source that does not exist yet has no id: it would still be set
            if current != value or (value is None and attname == "source_id"):
                setattr(lead, attname, value)
                changed.add(attname)
                changes[FIELD_NAMES[attname]] = [current, value]

        current = lead.attributes if isinstance(lead.attributes, dict) else {}
        merged = None
        for key, value in r.attributes.items():
            if key not in current or not _same(current[key], value):
                merged = merged if merged is not None else dict(current)
                merged[key] = value
        if merged is not None:
            changes["attributes"] = [current, merged]
            lead.attributes = merged
            changed.add("attributes")

        if r.outcome and lead.stage != r.outcome:
            if lead.stage in MOVABLE_STAGES:
                at_field, _ = self._stage_change(lead, r, batch)
                changed.update({"stage", "stage_changed_at", at_field})
            else:
                batch.outcome_kept += 1

        if changes:
            batch.changes[lead.pk] = changes
        if changed:
            lead.updated_at = self.now
            changed.add("updated_at")
            batch.updated.setdefault(frozenset(changed), []).append(lead)
        else:
            batch.unchanged += 1
