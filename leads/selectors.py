import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, F, Func, Q, QuerySet, TextField

from alignment.models import User
from leads.models import (
    EventType,
    Lead,
    LeadEvent,
    MergeRecord,
    Reason,
    Stage,
    StageChange,
    Touchpoint,
)


class LeadSearchText(Func):
    """What the lead search looks in: `first last`, the email and the company, lower-cased, in one
    string. The trigram index `lead_search_trgm` (migration 0006) holds exactly this expression, and
    PostgreSQL uses an expression index only for the same expression: change both or neither.
    A newline separates the fields, and a search never contains one (whitespace is collapsed), so
    no match runs from one field into the next, while "ada love" finds Ada Lovelace."""

    output_field = TextField()

    def __init__(self):
        super().__init__(F("first_name"), F("last_name"), F("email"), F("company"))

    def as_sql(self, compiler, connection, **extra_context):
        first, last, email, company = (compiler.compile(e) for e in self.get_source_expressions())
        newline = "chr(10)" if connection.vendor == "postgresql" else "char(10)"
        sql = (
            f"lower({first[0]} || ' ' || {last[0]} || {newline} || coalesce({email[0]}, '') "
            f"|| {newline} || {company[0]})"
        )
        return sql, (*first[1], *last[1], *email[1], *company[1])


# a trigram index can only serve a search with a run of three letters or digits in it
_TRIGRAM_WORD = re.compile(r"[^\W_]{3}")
_ALNUM = re.compile(r"[^\W_]")
# what starts a word in LeadSearchText (pg_trgm turns each of these into a word boundary)
_WORD_START = "(^|[\n .@_+'&/,-])"


def leads_list(*, stage: str = "", owner_id: int | None = None, q: str = "") -> QuerySet[Lead]:
    """Newest first. `q` is found anywhere in the name ("first last"), email or company, in any
    case; a `q` without three letters or digits in a row ("Li", "Wu") finds the leads with a word
    that starts with it, since trigrams cannot find shorter fragments anywhere."""
    qs = Lead.objects.select_related("owner", "source", "campaign")
    if stage:
        qs = qs.filter(stage=stage)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    q = " ".join(q.split()).lower()
    if _TRIGRAM_WORD.search(q):
        qs = qs.alias(search=LeadSearchText()).filter(search__contains=q)
    elif _ALNUM.search(q):
        qs = qs.alias(search=LeadSearchText()).filter(search__regex=_WORD_START + re.escape(q))
    elif q:
        qs = qs.none()
    return qs.order_by("-created_at", "-id")


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # "stage", "touchpoint", "assignment", "merge", "data", "score"
    title: str
    detail: str
    who: str


# a move is shown once, from lead.stage_changed; its specific twin (lead.mql, ...) says the same
_TIMELINE_SKIP = frozenset(
    {
        EventType.LEAD_MQL,
        EventType.LEAD_ACCEPTED,
        EventType.LEAD_REJECTED,
        EventType.LEAD_RECYCLED,
        EventType.LEAD_WON,
        EventType.LEAD_LOST,
    }
)


def _stage_label(code: str | None) -> str:
    return Stage(code).label if code in Stage.values else str(code or "?")


def _field_label(name: str) -> str:
    try:
        return str(Lead._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def lead_timeline(*, lead: Lead, limit: int = 200) -> list[TimelineEntry]:
    """Everything that happened to one lead, newest first, read from the event log (with the
    events of duplicates merged into it). At most five queries whatever the length of the history."""
    merged_ids = list(
        MergeRecord.objects.filter(survivor=lead).values_list("merged_lead_id", flat=True)
    )
    events = list(
        LeadEvent.objects.filter(lead_id__in=[lead.pk, *merged_ids])
        .exclude(type__in=_TIMELINE_SKIP)
        .select_related("actor")
        .order_by("-occurred_at", "-id")[:limit]
    )
    touchpoint_ids = [
        e.payload.get("touchpoint_id") for e in events if e.type == EventType.TOUCHPOINT_RECORDED
    ]
    touchpoints = {
        tp.pk: tp
        for tp in Touchpoint.objects.filter(pk__in=[i for i in touchpoint_ids if i]).select_related(
            "campaign"
        )
    }
    owner_ids = {e.payload.get("owner_id") for e in events if e.type == EventType.LEAD_ASSIGNED} - {
        None
    }
    people = {u.pk: str(u) for u in User.objects.filter(pk__in=owner_ids)}
    reasons = dict(Reason.objects.values_list("code", "label"))

    entries = []
    for e in events:
        p = e.payload
        who = str(e.actor) if e.actor_id else (e.system or "system")
        if e.actor_id and e.system:
            who = f"{e.actor} ({e.system})"
        if e.type == EventType.LEAD_STAGE_CHANGED:
            kind = "stage"
            title = f"{_stage_label(p.get('from'))} → {_stage_label(p.get('to'))}"
            parts = [
                reasons.get(p.get("reason"), p.get("reason") or ""),
                p.get("note") or "",
                f"deal value {p['deal_value']}" if p.get("deal_value") else "",
            ]
            detail = " · ".join(part for part in parts if part)
        elif e.type == EventType.TOUCHPOINT_RECORDED:
            kind = "touchpoint"
            tp = touchpoints.get(p.get("touchpoint_id"))
            title = tp.get_kind_display() if tp else str(p.get("kind", "touchpoint"))
            note = tp.metadata.get("note", "") if tp and isinstance(tp.metadata, dict) else ""
            detail = " · ".join(
                part for part in (tp.campaign.name if tp and tp.campaign_id else "", note) if part
            )
        elif e.type == EventType.LEAD_ASSIGNED:
            kind = "assignment"
            how = f"rule “{p['rule']}”" if p.get("rule") else "by hand"
            owner = people.get(p.get("owner_id"), "nobody")
            title = f"Assigned to {owner} ({how})"
            detail = p.get("note") or ""
        elif e.type == EventType.LEAD_MERGED:
            kind = "merge"
            title = f"Merged duplicate lead {p.get('merged_lead_id')}"
            detail = ", ".join(
                f"{n} {what.replace('_', ' ')}" for what, n in p.get("moved", {}).items() if n
            )
        elif e.type == EventType.LEAD_CREATED:
            kind = "data"
            title = "Lead created"
            detail = " · ".join(v for v in (p.get("email"), p.get("external_id")) if v)
        elif e.type == EventType.LEAD_UPDATED:
            kind = "data"
            changed = sorted(p.get("changes", {}))
            title = "Changed " + ", ".join(_field_label(name) for name in changed)
            detail = ""
        elif e.type == EventType.SCORE_CHANGED:
            kind = "score"
            before, after = p.get("before", {}), p.get("after", {})
            if before.get("qualifies") != after.get("qualifies"):
                title = (
                    "Now meets the MQL definition"
                    if after.get("qualifies")
                    else "No longer meets the MQL definition"
                )
            else:
                title = f"Grade {before.get('grade') or '—'} → {after.get('grade') or '—'}"
            detail = f"score {after.get('total')} (fit {after.get('fit')})"
        else:
            kind, title, detail = "data", e.type, ""
        if e.lead_id != lead.pk:
            detail = " · ".join(part for part in (detail, f"on merged lead {e.lead_id}") if part)
        entries.append(
            TimelineEntry(at=e.occurred_at, kind=kind, title=title, detail=detail, who=who)
        )
    return entries


def sales_feedback(
    *, since: datetime | None = None, until: datetime | None = None, group_by: str = "source"
) -> list[dict[str, Any]]:
    """How sales decided the MQLs of each source (or campaign): accepted, rejected, recycled, the
    rejection rate and the reasons. Counts decisions made in the period, from the stage history."""
    if group_by not in {"source", "campaign"}:
        raise ValueError("group_by must be 'source' or 'campaign'")
    key = "lead__source__name" if group_by == "source" else "lead__campaign__name"
    decisions = StageChange.objects.filter(
        from_stage=Stage.MQL, to_stage__in=[Stage.SAL, Stage.REJECTED, Stage.RECYCLED]
    )
    if since:
        decisions = decisions.filter(at__gte=since)
    if until:
        decisions = decisions.filter(at__lt=until)
    rows = (
        decisions.values(key)
        .annotate(
            accepted=Count("id", filter=Q(to_stage=Stage.SAL)),
            rejected=Count("id", filter=Q(to_stage=Stage.REJECTED)),
            recycled=Count("id", filter=Q(to_stage=Stage.RECYCLED)),
        )
        .order_by(key)
    )
    reasons = decisions.exclude(reason=None).values(key, "reason").annotate(n=Count("id"))
    labels = dict(Reason.objects.values_list("id", "label"))
    by_group: dict[Any, list[tuple[str, int]]] = {}
    for r in reasons:
        by_group.setdefault(r[key], []).append((labels[r["reason"]], r["n"]))
    result = []
    for row in rows:
        decided = row["accepted"] + row["rejected"] + row["recycled"]
        result.append(
            {
                "name": row[key] or "(none)",
                "decided": decided,
                "accepted": row["accepted"],
                "rejected": row["rejected"],
                "recycled": row["recycled"],
                "rejection_rate": (row["rejected"] + row["recycled"]) / decided if decided else 0,
                "reasons": sorted(by_group.get(row[key], []), key=lambda x: -x[1]),
            }
        )
    result.sort(key=lambda r: (-r["rejection_rate"], r["name"]))
    return result
