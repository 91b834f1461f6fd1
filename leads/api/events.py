"""The event feed: GET /api/v1/events/ replays the lead event log (leads.models.LeadEvent) in id
order from a cursor, so an integration catches up on everything it missed without webhooks.

Ids come from a sequence, and a transaction that took id 100 may commit after one that took 101.
A reader that served 101 and moved its cursor past it would never see 100. So the feed serves
ids only up to the first *gap* (a missing id below a visible one) that may still be filled:

- On PostgreSQL the window of ids is read in the same statement as the snapshot's xmin and xmax
  (`pg_current_snapshot()`). A gap seen in that snapshot belongs to a transaction with an xid
  below its xmax (every writer here writes or locks the lead row before it appends an event, so
  it has an xid when it takes the event's id), or to one that rolled back (a gap for ever). The
  answer's cursor remembers (the highest id read, that xmax). A later request whose snapshot's
  xmin has passed that xmax knows every such transaction has ended: what they committed is
  visible, and the gaps left are permanent and skipped. When no other transaction is running
  at all, every gap seen is final at once. (xids are the server's: a long transaction in any
  database of the server holds gaps back until it ends.)
- On SQLite a writer holds the database's one write lock until it commits, so ids become
  visible in order and there is no gap to wait for.

The cursor is opaque: `<id>` or `<id>.<settled>.<pending>.<xmax>`; send back the `next` of the
previous answer. A plain event id works as a first cursor.
"""

import re
from dataclasses import dataclass

from django.db import connection
from django.urls import path
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES
from alignment.api_base import require_team_member
from leads.api.serializers import LEAD_RELATED, LeadSerializer
from leads.models import EventType, LeadEvent

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# ids looked at per request to find the horizon: bounds the work of a sparse filtered read
WINDOW = 5000
# ids and xids of up to 18 digits: always within bigint
_CURSOR_PATTERN = r"^(\d{1,18}(\.\d{1,18}\.\d{1,18}\.\d{1,18})?)?$"
_CURSOR = re.compile(r"^(\d{1,18})(?:\.(\d{1,18})\.(\d{1,18})\.(\d{1,18}))?$")
_BIGINT = 2**63 - 1

# the payload of each type, as leads/events.py writes it
EVENT_PAYLOADS = {
    EventType.LEAD_CREATED: '{"email", "external_id"}',
    EventType.LEAD_UPDATED: '{"changes": {field: [old, new]}} (only the fields that changed; '
    '"source_or_campaign": true when the source or campaign is one of them)',
    EventType.LEAD_STAGE_CHANGED: '{"from", "to", "stage_change_id", "reason", "note", '
    '"deal_value"}',
    EventType.LEAD_MQL: "as lead.stage_changed",
    EventType.LEAD_ACCEPTED: "as lead.stage_changed (to SAL)",
    EventType.LEAD_REJECTED: "as lead.stage_changed",
    EventType.LEAD_RECYCLED: "as lead.stage_changed",
    EventType.LEAD_WON: "as lead.stage_changed",
    EventType.LEAD_LOST: "as lead.stage_changed",
    EventType.LEAD_ASSIGNED: '{"owner_id", "previous_owner_id", "assignment_id", "rule_id", '
    '"rule", "note"}',
    EventType.LEAD_MERGED: '{"merged_lead_id", "merge_record_id", "moved": {...}}',
    EventType.TOUCHPOINT_RECORDED: '{"touchpoint_id", "kind", "campaign_id", "sales"} (`at` is '
    "the touchpoint's own time, `recorded_at` when it was logged)",
    EventType.SCORE_CHANGED: '{"model_id", "before": {"fit", "total", "grade", "qualifies"}, '
    '"after": {...}} (only when the grade or the MQL eligibility changes)',
    EventType.SCORING_ACTIVATED: '(no lead) {"model_id", "name", "replaced_id", "rescore_run_id"}',
    EventType.CONTENT_SHARED: '{"asset_id", "touchpoint_id", "title"} (a rep shared an asset)',
    EventType.CONTENT_ENGAGED: '{"asset_id", "touchpoint_id", "title"} (a content download '
    "that names the asset by id or URL)",
    EventType.OBJECTION_LOGGED: '{"objection_id", "kind", "category", "competitor", "campaign_id"}',
    EventType.OBJECTION_ANSWERED: '{"objection_id", "asset_id"} (asset_id null: unlinked)',
    EventType.FLAG_RAISED: '{"flag_id", "reason"}',
    EventType.FLAG_COMMENTED: '{"flag_id", "message_id"}',
    EventType.FLAG_RESOLVED: '{"flag_id", "outcome"}',
    EventType.STORY_RECORDED: '{"story_id", "outcome", "reasons": [codes], "competitor", '
    '"asset_ids": [...], "stage_change_id"}',
    EventType.ASSET_CREATED: '(no lead) {"asset_id", "title", "kind", "funnel_stage"}',
    EventType.ASSET_UPDATED: '(no lead) {"asset_id", "title", "changed": [field, ...]}',
    EventType.CONTENT_REQUESTED: '(no lead) {"request_id", "title"}',
    EventType.CONTENT_REQUEST_UPDATED: '(no lead) {"request_id", "status", "asset_id"}',
}
EVENT_TYPES_TEXT = "\n".join(f"- `{t.value}` ({t.label}): {EVENT_PAYLOADS[t]}" for t in EventType)


@dataclass(frozen=True)
class Cursor:
    """Where a reader stands: every event up to `after` was served; every id up to `settled` is
    final (its gaps are permanent); gaps up to `pending` wait for the transactions below `xmax`."""

    after: int = 0
    settled: int = 0
    pending: int = 0
    xmax: int = 0

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        match = _CURSOR.match(text.strip())
        if match is None:
            raise serializers.ValidationError(
                {"after": ["Send the `next` of the previous answer (or an event id)."]}
            )
        return cls(*(int(v) if v else 0 for v in match.groups()))

    def __str__(self) -> str:
        if self.pending <= self.after and self.settled <= self.after:
            return str(self.after)
        return f"{self.after}.{self.settled}.{self.pending}.{self.xmax}"


@dataclass(frozen=True)
class Horizon:
    upto: int  # the highest id that may be served now
    cursor: Cursor  # the state to carry (its `after` is set by the caller)
    more: bool  # ids beyond the window: the reader may go on at once


# the snapshot's xmin without our own transaction (the feed may be read inside one that has an
# xid: it sees its own rows, and must not wait for itself), its xmax, and the ids it sees
_WINDOW_SQL = (
    "SELECT COALESCE((SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) x), "
    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint), "
    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
    f"ARRAY(SELECT id FROM {LeadEvent._meta.db_table} WHERE id > %s ORDER BY id LIMIT %s)"
)


def _window(after: int) -> tuple[int | None, int | None, list[int]]:
    """The next WINDOW visible ids after `after`, with the xmin and xmax of the snapshot they
    were read in (None on SQLite, where there is nothing to wait for)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_WINDOW_SQL, [after, WINDOW])
            xmin, xmax, ids = cursor.fetchone()
        return xmin, xmax, list(ids)
    ids = list(
        LeadEvent.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:WINDOW]
    )
    return None, None, ids


def events_horizon(cursor: Cursor) -> Horizon:
    """How far the feed may serve after `cursor.after` without skipping an id still in flight."""
    xmin, xmax, ids = _window(cursor.after)
    settled, pending, wait = cursor.settled, cursor.pending, cursor.xmax
    if pending <= cursor.after:  # those gaps are behind the reader
        pending = wait = 0
    if xmin is None or xmin == xmax:
        # SQLite (ids become visible in order), or no other transaction is running: every gap
        # seen now is for good
        settled = max(settled, ids[-1] if ids else cursor.after)
        pending = wait = 0
    elif pending and xmin >= wait:
        # every transaction that could fill the gaps up to `pending` has ended
        settled, pending, wait = max(settled, pending), 0, 0
    upto, gap = cursor.after, False
    for pk in ids:
        first_missing = max(upto + 1, settled + 1)
        if pk > first_missing:
            upto, gap = first_missing - 1, True
            break
        upto = pk
    if gap and not pending:
        pending, wait = ids[-1], xmax
    state = Cursor(after=upto, settled=settled, pending=pending, xmax=wait)
    return Horizon(upto=upto, cursor=state, more=not gap and len(ids) == WINDOW)


# --- serializers -------------------------------------------------------------------------------


class EventActorSerializer(serializers.Serializer):
    username = serializers.CharField(allow_null=True, help_text="The person who acted, if any.")
    system = serializers.CharField(
        allow_blank=True,
        help_text="The named system that acted (routing, scoring, import, api:<key>), or the "
        "door a person came through (admin); empty when a person acted directly.",
    )


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(
        choices=EventType.choices, help_text="The event type (see the endpoint's description)."
    )
    at = serializers.DateTimeField(source="occurred_at", help_text="When it happened.")
    recorded_at = serializers.DateTimeField(help_text="When it was written to the log.")
    lead_id = serializers.IntegerField(
        allow_null=True, help_text="The lead (a merged duplicate's id stays in its events)."
    )
    actor = serializers.SerializerMethodField()
    payload = serializers.JSONField()

    @extend_schema_field(EventActorSerializer)
    def get_actor(self, event: LeadEvent) -> dict:
        return {
            "username": event.actor.username if event.actor_id and event.actor else None,
            "system": event.system,
        }


class EventWithLeadSerializer(EventSerializer):
    lead = LeadSerializer(
        allow_null=True,
        help_text="With include=lead: the lead as it is now (null once merged or gone).",
    )


class EventPageSerializer(serializers.Serializer):
    events = EventWithLeadSerializer(many=True)
    next = serializers.CharField(
        help_text="The cursor to send as `after` next time; always present, even when no "
        "event was returned (it may move past events the filters left out)."
    )
    has_more = serializers.BooleanField(
        help_text="True: more events can be read now, call again at once with `next`. False: "
        "caught up (events still being written are held back); poll again later."
    )


class EventQuerySerializer(serializers.Serializer):
    after = serializers.CharField(required=False, allow_blank=True)
    type = serializers.CharField(required=False, allow_blank=True)
    lead = serializers.IntegerField(required=False, min_value=1, max_value=_BIGINT)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)
    include = serializers.ChoiceField(choices=["lead"], required=False, allow_blank=True)

    def validate_type(self, value: str) -> list[str]:
        types = [t.strip() for t in value.split(",") if t.strip()]
        unknown = [t for t in types if t not in EventType.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown event type(s): {', '.join(unknown)}. Known: "
                f"{', '.join(EventType.values)}."
            )
        return types


class EventFeedView(APIView):
    required_scopes = ("events:read",)

    @extend_schema(
        summary="The event feed",
        description="Every event of the lead event log in order, from a cursor: read with "
        "`after=<next of the previous answer>` until `has_more` is false, then poll. No event "
        "is skipped or repeated: ids come from a sequence and a transaction may commit after "
        "one that took a higher id, so events above an id still being written are held back "
        "until that transaction ends (a page may then be short, or empty). Filters: `type` "
        "(comma-separated), `lead` (one lead's events); `include=lead` adds each event's lead "
        "as it is now. A page may hold fewer than `limit` events while `has_more` is true "
        "(filters, or the 5,000 ids a request looks at).\n\n"
        f"Event types and their payloads:\n{EVENT_TYPES_TEXT}\n\nScope: `events:read`.",
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "string", "pattern": _CURSOR_PATTERN},
                description="The cursor: `next` from the previous answer, or an event id; "
                "empty for the start of the log.",
            ),
            OpenApiParameter(
                "type",
                {"type": "array", "items": {"type": "string", "enum": EventType.values}},
                style="form",
                explode=False,
                description="Comma-separated event types, e.g. "
                "`lead.created,lead.stage_changed`. One of: " + ", ".join(EventType.values),
            ),
            OpenApiParameter(
                "lead",
                {"type": "integer", "minimum": 1, "maximum": _BIGINT},
                description="One lead's events.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                description=f"Events per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
            ),
            OpenApiParameter("include", enum=["lead"], description="`lead`: add the lead."),
        ],
        responses={200: EventPageSerializer},
        examples=[
            OpenApiExample(
                "A page",
                value={
                    "events": [
                        {
                            "id": 1041,
                            "type": "lead.stage_changed",
                            "at": "2026-12-01T10:15:00+00:00",
                            "recorded_at": "2026-12-01T10:15:00+00:00",
                            "lead_id": 42,
                            "actor": {"username": "rita", "system": ""},
                            "payload": {
                                "from": "mql",
                                "to": "sal",
                                "stage_change_id": 311,
                                "reason": None,
                                "note": "",
                                "deal_value": None,
                            },
                        }
                    ],
                    "next": "1041",
                    "has_more": False,
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
    )
    def get(self, request):
        require_team_member(request)
        query = EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        cursor = Cursor.parse(params.get("after") or "0")
        limit = params.get("limit") or DEFAULT_LIMIT
        with_lead = params.get("include") == "lead"

        horizon = events_horizon(cursor)
        events = LeadEvent.objects.filter(pk__gt=cursor.after, pk__lte=horizon.upto)
        if params.get("type"):
            events = events.filter(type__in=params["type"])
        if params.get("lead"):
            events = events.filter(lead_id=params["lead"])
        related = ["actor", *(f"lead__{r}" for r in LEAD_RELATED)] if with_lead else ["actor"]
        rows = list(events.select_related(*related).order_by("pk")[: limit + 1])
        if len(rows) > limit:
            rows = rows[:limit]
            state = Cursor(
                after=rows[-1].pk,
                settled=horizon.cursor.settled,
                pending=horizon.cursor.pending,
                xmax=horizon.cursor.xmax,
            )
            more = True
        else:
            state, more = horizon.cursor, horizon.more
        serializer = EventWithLeadSerializer if with_lead else EventSerializer
        return Response(
            {
                "events": serializer(rows, many=True).data,
                "next": str(state),
                "has_more": more,
            }
        )


urlpatterns = [path("events/", EventFeedView.as_view(), name="api-events")]
