"""Stage moves and reason codes through the API, with the pages' rules.

A move goes through `leads.lifecycle.lead_move`, which checks the allowed moves, the actor's role
(a rep decides only his own leads), the reason and the deal value; this module only names the
moves (`TRANSITIONS`) and decides what a key that acts as nobody may do: the moves a marketing
system makes (nurture, qualify), as the named system `api:<key name>`, never a sales decision."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES, PROBLEM_MEDIA_TYPE, problem
from alignment.api_base import require_team_member
from alignment.idempotency import idempotent
from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import User
from leads.api.leads import api_actor
from leads.api.serializers import LEAD_RELATED, LeadSerializer
from leads.lifecycle import (
    ALLOWED_MOVES,
    DEAL_VALUE_REQUIRED,
    REASON_REQUIRED,
    lead_move,
    move_actor_check,
)
from leads.models import Lead, Reason, ReasonKind, Stage, StageChange

# the API's names for the moves of leads.lifecycle.ALLOWED_MOVES: one per target stage
TRANSITIONS: dict[str, str] = {
    "nurture": Stage.NURTURING,
    "qualify": Stage.MQL,
    "accept": Stage.SAL,
    "reject": Stage.REJECTED,
    "sales_qualify": Stage.SQL,
    "open_opportunity": Stage.OPPORTUNITY,
    "win": Stage.WON,
    "lose": Stage.LOST,
    "recycle": Stage.RECYCLED,
}
# what a key acting as nobody may do: marketing automation nurtures and qualifies; accepting,
# rejecting, progressing and recycling are decisions of a person in sales (or a manager)
SYSTEM_TRANSITIONS = ("nurture", "qualify")


def reasons_by_stage(reasons: list[Reason]) -> dict[str, list[Reason]]:
    """The active reasons each target stage takes, as lead_move accepts them: of the kinds
    REASON_REQUIRED names (one per code, the first kind first), recycling ones for recycled."""
    out: dict[str, list[Reason]] = {}
    for stage, kinds in REASON_REQUIRED.items():
        chosen: dict[str, Reason] = {}
        for kind in kinds:
            for reason in reasons:
                if not reason.active or reason.kind != kind or reason.code in chosen:
                    continue
                if stage == Stage.RECYCLED and not reason.recycles:
                    continue
                chosen[reason.code] = reason
        out[stage] = list(chosen.values())
    return out


def _active_reasons() -> list[Reason]:
    return list(Reason.objects.filter(active=True).order_by("kind", "position", "label", "id"))


# --- serializers ----------------------------------------------------------------------------


class ReasonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Reason
        fields = ("kind", "code", "label", "recycles", "requires_note")
        read_only_fields = fields


class TransitionRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=list(TRANSITIONS),
        help_text="The move: "
        + ", ".join(f"`{a}` (→ {Stage(s).label})" for a, s in TRANSITIONS.items())
        + ".",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=50,
        help_text="A reason code (GET /api/v1/reasons/?action=...): needed to reject, recycle "
        "and lose. Rejecting with a reason that recycles (`not_ready`) recycles the lead.",
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=5000,
        help_text="Free text kept with the move; needed by reasons with `requires_note`.",
    )
    deal_value = serializers.DecimalField(
        required=False,
        allow_null=True,
        max_digits=14,
        decimal_places=2,
        help_text="Needed to open an opportunity and to win (winning reuses the opportunity's).",
    )


class StageChangeSerializer(serializers.Serializer):
    """One row of the lead's stage history (leads.models.StageChange)."""

    id = serializers.IntegerField()
    to = serializers.ChoiceField(source="to_stage", choices=Stage.choices)
    at = serializers.DateTimeField()
    reason = serializers.CharField(source="reason.code", allow_null=True)
    note = serializers.CharField()
    deal_value = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    by = serializers.CharField(
        source="by.username", allow_null=True, help_text="The person's username, if any."
    )
    system = serializers.CharField(source="by_system", help_text="The named system, if any.")


# `from` is a keyword: declared by hand, second, as the history reads
StageChangeSerializer._declared_fields = {
    "id": StageChangeSerializer._declared_fields["id"],
    "from": serializers.ChoiceField(source="from_stage", choices=Stage.choices),
    **{k: v for k, v in StageChangeSerializer._declared_fields.items() if k != "id"},
}


class TransitionResultSerializer(serializers.Serializer):
    lead = LeadSerializer()
    stage_change = StageChangeSerializer()


class AvailableMoveSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(TRANSITIONS))
    to = serializers.ChoiceField(choices=Stage.choices)
    reason_required = serializers.BooleanField()
    reasons = ReasonSerializer(many=True, help_text="The codes this move takes (if it needs one).")
    deal_value_required = serializers.BooleanField(
        help_text="True when the move needs a deal value and the lead has none yet."
    )


class AvailableMovesSerializer(serializers.Serializer):
    lead = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices)
    moves = AvailableMoveSerializer(many=True)


def lead_for(pk: int) -> Lead:
    return get_object_or_404(Lead.objects.select_related(*LEAD_RELATED), pk=pk)


def available_moves(*, lead: Lead, by: User | None, system: str) -> list[dict]:
    """The moves the actor may make on the lead now, with the reasons each takes."""
    reasons = reasons_by_stage(_active_reasons())
    moves = []
    for action, to in TRANSITIONS.items():
        if to not in ALLOWED_MOVES[lead.stage]:
            continue
        if by is None:
            if action not in SYSTEM_TRANSITIONS:
                continue
        else:
            try:
                move_actor_check(lead=lead, to=to, by=by, system=system)
            except DomainError:
                continue
        moves.append(
            {
                "action": action,
                "to": to,
                "reason_required": to in REASON_REQUIRED,
                "reasons": reasons.get(to, []),
                "deal_value_required": to in DEAL_VALUE_REQUIRED and lead.deal_value is None,
            }
        )
    return moves


TRANSITION_EXAMPLE = {"action": "win", "deal_value": "48000.00", "note": "Signed today"}


class LeadTransitionsView(APIView):
    """The stage moves of one lead: what the caller may do now (GET), and doing one (POST)."""

    required_scopes = {"GET": ("leads:read",), "POST": ("pipeline:write",)}

    @extend_schema(
        summary="Moves the caller may make on a lead now",
        description="The moves (`action`, target stage) allowed from the lead's stage that the "
        "caller's role may make on this lead, each with the reason codes it takes and whether "
        "it needs a deal value. A key acting as nobody sees only `nurture` and `qualify`.\n\n"
        "Scope: `leads:read`.",
        responses={200: AvailableMovesSerializer},
        examples=[
            OpenApiExample(
                "An MQL, seen by its rep",
                value={
                    "lead": 42,
                    "stage": "mql",
                    "moves": [
                        {
                            "action": "accept",
                            "to": "sal",
                            "reason_required": False,
                            "reasons": [],
                            "deal_value_required": False,
                        },
                        {
                            "action": "reject",
                            "to": "rejected",
                            "reason_required": True,
                            "reasons": [
                                {
                                    "kind": "reject",
                                    "code": "bad_fit",
                                    "label": "Bad fit",
                                    "recycles": False,
                                    "requires_note": False,
                                }
                            ],
                            "deal_value_required": False,
                        },
                    ],
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
    )
    def get(self, request, pk: int):
        require_team_member(request)
        lead = lead_for(pk)
        actor = api_actor(request)
        data = {
            "lead": lead.pk,
            "stage": lead.stage,
            "moves": available_moves(lead=lead, **actor),
        }
        return Response(AvailableMovesSerializer(data).data)

    @extend_schema(
        summary="Move a lead (accept, reject, recycle, qualify, win, ...)",
        description="Makes one move through the lifecycle service, with the lead pages' rules: "
        "the allowed moves from the current stage, the caller's role (a sales rep accepts, "
        "rejects and progresses only his own leads; marketing qualifies; recycling is for "
        "sales and the marketing manager), a reason code to reject, recycle and lose (a "
        "reason with `requires_note` needs a note), a deal value to open an opportunity and "
        "to win. A key acting as nobody may only `nurture` and `qualify`, recorded as the "
        "system `api:<key name>`. The lead's events (`lead.stage_changed` and the move's own) "
        "are written with the move. A refused move changes nothing: 409 when the lead's "
        "stage does not allow it, 400 with the field for missing or wrong data, 403 for the "
        "role.\n\nScope: `pipeline:write`.",
        request=TransitionRequestSerializer,
        responses={
            200: TransitionResultSerializer,
            (409, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The lead's stage does not allow this move; nothing changed. Or: a "
                "request with this Idempotency-Key is still being processed.",
            ),
        },
        examples=[
            OpenApiExample("Win", value=TRANSITION_EXAMPLE, request_only=True),
            OpenApiExample(
                "Reject", value={"action": "reject", "reason": "bad_fit"}, request_only=True
            ),
            OpenApiExample(
                "Won",
                value={
                    "lead": {"id": 42, "stage": "won", "deal_value": "48000.00"},
                    "stage_change": {
                        "id": 311,
                        "from": "opportunity",
                        "to": "won",
                        "at": "2026-12-01T10:15:00+00:00",
                        "reason": None,
                        "note": "Signed today",
                        "deal_value": "48000.00",
                        "by": "rita",
                        "system": "",
                    },
                },
                response_only=True,
            ),
            OpenApiExample(
                "Not allowed from this stage",
                value=problem(
                    status_code=409,
                    detail="Ada Park is MQL; it cannot move to Won. Allowed from MQL: "
                    "SAL (accepted), Rejected, Recycled.",
                    instance="/api/v1/leads/42/transitions/",
                    code="conflict",
                    errors={"stage": ["Ada Park is MQL; it cannot move to Won."]},
                ),
                response_only=True,
                status_codes=["409"],
            ),
            *PROBLEM_EXAMPLES,
        ],
    )
    @idempotent
    def post(self, request, pk: int):
        body = TransitionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        lead = lead_for(pk)
        actor = api_actor(request)
        action = data["action"]
        if actor["by"] is None and action not in SYSTEM_TRANSITIONS:
            raise PermissionDenied(
                f"A key acting as nobody may not {action.replace('_', ' ')} a lead: that is a "
                "sales decision. Create the key --as-user the person who decides "
                f"(it may only {' and '.join(SYSTEM_TRANSITIONS)})."
            )
        try:
            with transaction.atomic():
                lead_move(
                    lead=lead,
                    to=TRANSITIONS[action],
                    **actor,
                    reason=data.get("reason") or None,
                    note=data.get("note", ""),
                    deal_value=data.get("deal_value"),
                )
                # under the lead's lock until commit: the latest change is this move
                change = (
                    StageChange.objects.select_related("reason", "by")
                    .filter(lead_id=lead.pk)
                    .latest("id")
                )
        except PermissionDenied:
            raise
        except DomainError as exc:
            if exc.field != "stage":
                raise
            body = problem(
                status_code=409,
                detail=exc.message,
                instance=request.path,
                code="conflict",
                errors={"stage": [exc.message]},
            )
            return Response(body, status=status.HTTP_409_CONFLICT, content_type=PROBLEM_MEDIA_TYPE)
        result = {"lead": lead_for(pk), "stage_change": change}
        return Response(TransitionResultSerializer(result).data)


class ReasonListView(APIView):
    """The reason codes moves take."""

    required_scopes = ("leads:read",)

    @extend_schema(
        summary="Reason codes",
        description="The active reason codes: `reject` (rejecting an MQL; those that "
        "`recycles` send it back to marketing instead), `recycle` and `lost`. "
        "`?kind=` keeps one kind; `?action=` (a transition) keeps the codes that move takes, "
        "as the transition endpoint accepts them (none for a move that needs no reason). "
        "A reason with `requires_note` needs a note.\n\nScope: `leads:read`.",
        parameters=[
            OpenApiParameter("kind", enum=ReasonKind.values, required=False),
            OpenApiParameter("action", enum=list(TRANSITIONS), required=False),
        ],
        responses={200: ReasonSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Lost reasons",
                value=[
                    {
                        "kind": "lost",
                        "code": "price",
                        "label": "Price",
                        "recycles": False,
                        "requires_note": False,
                    }
                ],
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
    )
    def get(self, request):
        require_team_member(request)
        kind = request.query_params.get("kind")
        action = request.query_params.get("action")
        errors = {}
        # given but empty is a mistake too (a form that sent nothing), not "every kind"
        if kind is not None and kind not in ReasonKind.values:
            errors["kind"] = [f"One of: {', '.join(ReasonKind.values)}."]
        if action is not None and action not in TRANSITIONS:
            errors["action"] = [f"One of: {', '.join(TRANSITIONS)}."]
        if errors:
            raise serializers.ValidationError(errors)
        reasons = _active_reasons()
        if action:
            reasons = reasons_by_stage(reasons).get(TRANSITIONS[action], [])
        if kind:
            reasons = [r for r in reasons if r.kind == kind]
        return Response(ReasonSerializer(reasons, many=True).data)


urlpatterns = [
    path("leads/<int:pk>/transitions/", LeadTransitionsView.as_view(), name="api-lead-transitions"),
    path("reasons/", ReasonListView.as_view(), name="api-reasons"),
]
