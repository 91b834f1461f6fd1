import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import (
    BooleanField,
    DateTimeField,
    ExpressionWrapper,
    F,
    Func,
    QuerySet,
    TextField,
    Value,
)

from alignment.lib.money import format_money
from alignment.models import User
from leads.models import (
    EventType,
    Lead,
    LeadEvent,
    MergeRecord,
    Reason,
    Stage,
    Touchpoint,
    TouchpointKind,
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

# A search is "common" when at least SEARCH_COMMON of the newest SEARCH_WINDOW leads match it:
# then walking the list newest first finds a page quickly. Otherwise the matches are collected
# through the trigram index and sorted. PostgreSQL's own guess cannot be trusted to choose: its
# statistics sample a few hundred values, so a company with 100 leads of a million can look like
# thousands, and walking the list for it took 4 to 9 s. The figures: bench/search.py.
SEARCH_WINDOW = 2000
SEARCH_COMMON = 10
# The trigram index finds the candidates of a rare search from a few trigrams of it: one in three
# letters, of its first SEARCH_INDEX_CHUNKS * 3. Every trigram costs the index a pass over the
# leads that have it (a pasted email has 45: 100 ms instead of 13), and these few already leave
# only a handful of candidates to check against the whole search.
SEARCH_INDEX_CHUNKS = 6


class _Like(Func):
    """`expression LIKE pattern`, for a pattern with wildcards of its own."""

    arg_joiner = " LIKE "
    template = "%(expressions)s"
    output_field = BooleanField()


class _NotIndexed(Func):
    """The same text, in an expression no index holds: a condition on it is checked row by row."""

    template = "(%(expressions)s || '')"
    output_field = TextField()


def _search_lookup(q: str) -> tuple[str, str] | None:
    """The lookup on LeadSearchText that finds `q`, or None when `q` has no letter or digit."""
    q = " ".join(q.split()).lower()
    if _TRIGRAM_WORD.search(q):
        return "contains", q
    if _ALNUM.search(q):
        return "regex", _WORD_START + re.escape(q)
    return None


def _candidates_pattern(q: str) -> str:
    """A LIKE pattern that every text containing `q` matches, made of few of its trigrams."""
    if len(q) <= 9:  # seven trigrams at most: all of them
        chunks = [q]
    else:
        chunks = [q[i : i + 3] for i in range(0, min(len(q), 3 * SEARCH_INDEX_CHUNKS), 3)]
    return "%" + "%".join(connection.ops.prep_for_like_query(c) for c in chunks) + "%"


def _search_is_common(lookup: str, value: str) -> bool:
    """Whether the search matches SEARCH_COMMON of the newest SEARCH_WINDOW leads: one bounded
    walk down the created_at index (the LIMIT inside keeps the planner from doing anything else)."""
    recent = (
        Lead.objects.annotate(search=LeadSearchText())
        .order_by("-created_at", "-id")
        .values("search")[:SEARCH_WINDOW]
    )
    recent_sql, recent_params = recent.query.sql_with_params()
    if lookup == "contains":
        value = f"%{connection.ops.prep_for_like_query(value)}%"
    sql = (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM ({recent_sql}) recent "
        f"WHERE recent.search {connection.operators[lookup]} LIMIT %s) hits"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*recent_params, value, SEARCH_COMMON))
        return cursor.fetchone()[0] >= SEARCH_COMMON


# the list's orderings (a leading "-" descends); every one ends with id, so ties keep one order
LIST_ORDERINGS: dict[str, tuple[str, ...]] = {
    "created": ("created_at",),
    "updated": ("updated_at",),
    "score": ("score",),
    "name": ("last_name", "first_name"),
    "company": ("company",),
}
DEFAULT_LIST_ORDER = "-created"


@dataclass(frozen=True)
class LeadListFilters:
    """What the lead list (and its CSV export) is narrowed to; empty values filter nothing.
    Times are aware: `created_from` includes, `created_before` excludes (whole days in the
    viewer's zone are the page's business)."""

    stages: tuple[str, ...] = ()
    owner_id: int | None = None
    unassigned: bool = False
    source_id: int | None = None
    campaign_id: int | None = None
    grade: str = ""
    score_min: float | None = None
    score_max: float | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    updated_from: datetime | None = None
    updated_before: datetime | None = None

    def apply(self, qs: QuerySet[Lead]) -> QuerySet[Lead]:
        conditions = {
            "stage": self.stages[0] if len(self.stages) == 1 else None,
            "stage__in": list(self.stages) if len(self.stages) > 1 else None,
            "owner_id": self.owner_id,
            "source_id": self.source_id,
            "campaign_id": self.campaign_id,
            "grade": self.grade or None,
            "score__gte": self.score_min,
            "score__lte": self.score_max,
            "created_at__gte": self.created_from,
            "created_at__lt": self.created_before,
            "updated_at__gte": self.updated_from,
            "updated_at__lt": self.updated_before,
        }
        qs = qs.filter(**{k: v for k, v in conditions.items() if v is not None})
        return qs.filter(owner__isnull=True) if self.unassigned else qs


def _list_order(order: str, *, walkable: bool = True) -> list:
    """ORDER BY for one of LIST_ORDERINGS. Not `walkable`: each column is wrapped in an expression
    no index serves, so that PostgreSQL sorts the matches instead of walking a list."""
    descending = order.startswith("-")
    fields = LIST_ORDERINGS[order.lstrip("-")]
    terms = []
    for field in fields:
        kind = Lead._meta.get_field(field).get_internal_type()
        if walkable or kind == "FloatField":  # no index holds the score (migration 0007)
            term = F(field)
        elif kind == "DateTimeField":
            term = ExpressionWrapper(F(field) + timedelta(0), output_field=DateTimeField())
        else:
            term = _NotIndexed(F(field))
        terms.append(term.desc() if descending else term.asc())
    return [*terms, "-id" if descending else "id"]


def leads_list(
    *,
    stage: str = "",
    owner_id: int | None = None,
    q: str = "",
    filters: LeadListFilters | None = None,
    order: str = DEFAULT_LIST_ORDER,
) -> QuerySet[Lead]:
    """Newest first, or in `order` (one of LIST_ORDERINGS, "-" first to descend; id settles ties).
    `q` is found anywhere in the name ("first last"), email or company, in any
    case; a `q` without three letters or digits in a row ("Li", "Wu") finds the leads with a word
    that starts with it, since trigrams cannot find shorter fragments anywhere.
    On PostgreSQL a search runs one query here (how common it is), then one when a page is read."""
    if order.lstrip("-") not in LIST_ORDERINGS:
        raise ValueError(f"Unknown lead list order {order!r}.")
    qs = Lead.objects.select_related("owner", "source", "campaign")
    if stage:
        qs = qs.filter(stage=stage)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if filters is not None:
        qs = filters.apply(qs)
    if not q.strip():
        return qs.order_by(*_list_order(order))
    search = _search_lookup(q)
    if search is None:
        return qs.none()
    lookup, value = search
    qs = qs.alias(search=LeadSearchText())
    if connection.vendor != "postgresql" or _search_is_common(lookup, value):
        return qs.filter(**{f"search__{lookup}": value}).order_by(*_list_order(order))
    # A rare search: the trigram index finds the candidates, each is checked against the whole
    # search, and they are sorted in the list's order through an expression the created_at index
    # cannot serve, so that PostgreSQL cannot choose to walk the list instead.
    if lookup == "contains":
        qs = qs.alias(search_checked=_NotIndexed(F("search"))).filter(
            _Like(F("search"), Value(_candidates_pattern(value))), search_checked__contains=value
        )
    else:
        qs = qs.filter(search__regex=value)
    return qs.order_by(*_list_order(order, walkable=False))


# below this many leads (as the planner guesses) the list counts them exactly
EXACT_COUNT_BELOW = 1000


@dataclass(frozen=True)
class LeadCount:
    value: int
    exact: bool


def leads_count_estimate(qs: QuerySet[Lead]) -> LeadCount:
    """How many leads `qs` holds, cheaply: on PostgreSQL the table's size from pg_class when
    nothing is filtered, else the planner's estimate, counted exactly only when that is below
    EXACT_COUNT_BELOW (a COUNT(*) of a million rows takes longer than the page). SQLite counts."""
    qs = qs.order_by()
    if connection.vendor != "postgresql":
        return LeadCount(qs.count(), exact=True)
    if not qs.query.where:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Lead._meta.db_table]
            )
            row = cursor.fetchone()
        # -1: never analyzed or vacuumed, the planner knows nothing yet
        if row and row[0] >= EXACT_COUNT_BELOW:
            return LeadCount(int(row[0]), exact=False)
        return LeadCount(qs.count(), exact=True)
    sql, params = qs.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    if estimate >= EXACT_COUNT_BELOW:
        return LeadCount(estimate, exact=False)
    return LeadCount(qs.count(), exact=True)


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
        # the content_shared / content_download touchpoint is the entry (it names the asset)
        EventType.CONTENT_SHARED,
        EventType.CONTENT_ENGAGED,
    }
)


def _stage_label(code: str | None) -> str:
    return Stage(code).label if code in Stage.values else str(code or "?")


def _field_label(name: str) -> str:
    try:
        return str(Lead._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


_FEEDBACK_DETAIL = {
    EventType.OBJECTION_LOGGED: "category",
    EventType.OBJECTION_ANSWERED: "",
    EventType.FLAG_RAISED: "reason",
    EventType.FLAG_COMMENTED: "",
    EventType.FLAG_RESOLVED: "outcome",
    EventType.STORY_RECORDED: "outcome",
}


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
                f"deal value {format_money(p['deal_value'])}" if p.get("deal_value") else "",
            ]
            detail = " · ".join(part for part in parts if part)
        elif e.type == EventType.TOUCHPOINT_RECORDED:
            kind = "touchpoint"
            tp = touchpoints.get(p.get("touchpoint_id"))
            title = tp.get_kind_display() if tp else str(p.get("kind", "touchpoint"))
            meta = tp.metadata if tp and isinstance(tp.metadata, dict) else {}
            detail = " · ".join(
                str(part)
                for part in (
                    meta.get("title", "")
                    if tp and tp.kind == TouchpointKind.CONTENT_SHARED
                    else "",
                    tp.campaign.name if tp and tp.campaign_id else "",
                    meta.get("note", ""),
                )
                if part
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
        elif e.type in _FEEDBACK_DETAIL:
            # what sales told marketing (content/): the label, and the payload's word for it
            kind = "feedback"
            title = EventType(e.type).label
            detail = str(p.get(_FEEDBACK_DETAIL[e.type]) or "").replace("_", " ")
        else:
            kind, title, detail = "data", e.type, ""
        if e.lead_id != lead.pk:
            detail = " · ".join(part for part in (detail, f"on merged lead {e.lead_id}") if part)
        entries.append(
            TimelineEntry(at=e.occurred_at, kind=kind, title=title, detail=detail, who=who)
        )
    return entries
