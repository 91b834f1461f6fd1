"""The scoring model's versions over REST: read them (scope `scoring:read`), and move one
through the sign-off (scope `scoring:approve`) with the same services, roles and sentences as
the scoring pages. Drafts are written and edited on the pages, not here."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from alignment.api import PROBLEM_EXAMPLES, api_can, problem
from alignment.api_auth import request_api_key
from alignment.api_base import AwareDateTimeField, SignOffApprovalSerializer, TeamReadView
from alignment.idempotency import idempotent
from alignment.permissions import Action
from leads.scoring import services
from leads.scoring.models import ModelOrigin, ModelStatus, ScoringApproval, ScoringModel
from leads.scoring.tasks import scoring_preview_queue
from leads.scoring.views import APPROVERS_ONLY

READ_SCOPE = "scoring:read"
APPROVE_SCOPE = "scoring:approve"
EDITORS_ONLY = "Only marketing may propose or withdraw a scoring model version."
NEEDS_A_PERSON = (
    "A sign-off needs a person: use a key that acts as a marketing or sales manager "
    "(create_api_key --as-user)."
)


def versions():
    """Every version with what its representation reads (approvers, author): no query per row."""
    return ScoringModel.objects.select_related("created_by").prefetch_related(
        Prefetch("approvals", queryset=ScoringApproval.objects.select_related("by"))
    )


# --- representation ---------------------------------------------------------------------------


class ScoringThresholdsSerializer(serializers.Serializer):
    mql_total = serializers.IntegerField(help_text="An MQL has a total score at least this...")
    mql_fit = serializers.IntegerField(help_text="...and a fit score at least this.")
    grade_a = serializers.IntegerField(help_text="Grade A from this fit score up.")
    grade_b = serializers.IntegerField()
    grade_c = serializers.IntegerField(help_text="Below grade C's bar: D.")


class ScoringRulesSerializer(serializers.Serializer):
    fit = serializers.ListField(child=serializers.DictField(), source="fit_rules")
    engagement = serializers.ListField(child=serializers.DictField(), source="engagement_rules")
    group_caps = serializers.DictField(child=serializers.IntegerField())
    half_life_days = serializers.FloatField(help_text="Engagement points halve in this time.")


class ScoringVersionSerializer(serializers.ModelSerializer):
    """One version of the shared scoring model: its rules and thresholds, where it is in the
    sign-off, and who approved it. `updated_at` is what an approval names as `read_at`."""

    label = serializers.CharField()
    status = serializers.ChoiceField(choices=ModelStatus.choices)
    origin = serializers.ChoiceField(choices=ModelOrigin.choices)
    based_on = serializers.IntegerField(source="based_on_id", allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    rules = ScoringRulesSerializer(source="*")
    thresholds = ScoringThresholdsSerializer(source="*")
    diff_summary = serializers.SerializerMethodField()
    approvals = SignOffApprovalSerializer(many=True)

    class Meta:
        model = ScoringModel
        fields = (
            "id",
            "label",
            "name",
            "status",
            "origin",
            "description",
            "based_on",
            "rules",
            "thresholds",
            "diff_summary",
            "approvals",
            "created_by",
            "created_at",
            "updated_at",
            "proposed_at",
            "activated_at",
            "retired_at",
        )

    def get_diff_summary(self, model: ScoringModel) -> str:
        """What it changes against the version it was proposed against or replaced, in words."""
        return (model.diff or {}).get("summary", "")


class ScoringEventSerializer(serializers.Serializer):
    action = serializers.CharField()
    by = serializers.CharField(source="by.username", allow_null=True)
    by_role = serializers.CharField()
    by_system = serializers.CharField()
    note = serializers.CharField()
    at = serializers.DateTimeField()


class ScoringVersionDetailSerializer(ScoringVersionSerializer):
    diff = serializers.JSONField(help_text="The stored diff (summary and rule changes).")
    report = serializers.JSONField(help_text="What produced it (fine-tuning: AUC, lift, ...).")
    events = serializers.SerializerMethodField()

    class Meta(ScoringVersionSerializer.Meta):
        fields = (*ScoringVersionSerializer.Meta.fields, "diff", "report", "events")

    @extend_schema_field(ScoringEventSerializer(many=True))
    def get_events(self, model: ScoringModel) -> list[dict]:
        history = model.events.select_related("by").order_by("at", "id")
        return ScoringEventSerializer(history, many=True).data


VERSION_EXAMPLE = {
    "id": 8,
    "label": "v8",
    "name": "Default model (copy)",
    "status": "proposed",
    "origin": "manual",
    "description": "",
    "based_on": 7,
    "rules": {
        "fit": [
            {"key": "vp", "field": "title", "op": "contains", "value": ["vp"], "points": 20},
        ],
        "engagement": [{"key": "demo", "kind": "demo_request", "points": 60}],
        "group_caps": {"web": 10},
        "half_life_days": 30.0,
    },
    "thresholds": {"mql_total": 90, "mql_fit": 40, "grade_a": 60, "grade_b": 40, "grade_c": 20},
    "diff_summary": "MQL total 100 → 90",
    "approvals": [
        {"by": "mia", "role": "marketing_manager", "note": "", "at": "2026-11-18T10:00:00Z"}
    ],
    "created_by": "marketer",
    "created_at": "2026-11-17T09:00:00Z",
    "updated_at": "2026-11-17T16:00:00.123456Z",
    "proposed_at": "2026-11-17T16:00:00.123456Z",
    "activated_at": None,
    "retired_at": None,
}
STATUSES = [s.value for s in ModelStatus]


class _ScoringView(TeamReadView):
    required_scopes = (READ_SCOPE,)


class VersionListView(_ScoringView):
    queryset = ScoringModel.objects.none()
    serializer_class = ScoringVersionSerializer

    @extend_schema(
        summary="Scoring model versions",
        description="Every version of the scoring model, newest first, with its rules, "
        "thresholds, sign-off status and approvals; limit/offset pagination. "
        "Scope: `scoring:read`.",
        parameters=[OpenApiParameter("status", enum=STATUSES, description="Only this status.")],
        responses={200: ScoringVersionSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Versions",
                value={"count": 1, "next": None, "previous": None, "results": [VERSION_EXAMPLE]},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["scoring"],
    )
    def get(self, request):
        queryset = versions().order_by("-id")
        status = request.query_params.get("status")
        if status is not None:
            if status not in STATUSES:
                raise exceptions.ValidationError(
                    {"status": [f"Choose one of: {', '.join(STATUSES)}."]}
                )
            queryset = queryset.filter(status=status)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ScoringVersionSerializer(page, many=True).data)


DETAIL_EXAMPLE = {
    **VERSION_EXAMPLE,
    "diff": {"summary": "MQL total 100 → 90", "settings": {"mql_total": [100, 90]}},
    "report": {},
    "events": [
        {
            "action": "proposed",
            "by": "marketer",
            "by_role": "marketer",
            "by_system": "",
            "note": "",
            "at": "2026-11-17T16:00:00.123456Z",
        }
    ],
}


class VersionDetailView(_ScoringView):
    @extend_schema(
        summary="One scoring model version",
        description="A version with its diff, the report that came with it and its history. "
        "Scope: `scoring:read`.",
        responses={200: ScoringVersionDetailSerializer},
        examples=[
            OpenApiExample("A proposal", value=DETAIL_EXAMPLE, response_only=True),
            *PROBLEM_EXAMPLES,
        ],
        tags=["scoring"],
    )
    def get(self, request, pk: int):
        model = get_object_or_404(versions(), pk=pk)
        return Response(ScoringVersionDetailSerializer(model).data)


class ActiveVersionView(_ScoringView):
    @extend_schema(
        summary="The scoring model in force",
        description="The active version (what scores every lead now and defines an MQL). "
        "Scope: `scoring:read`.",
        responses={200: ScoringVersionDetailSerializer},
        examples=[
            OpenApiExample(
                "In force",
                value={**DETAIL_EXAMPLE, "status": "active", "approvals": []},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["scoring"],
    )
    def get(self, request):
        model = versions().filter(status=ModelStatus.ACTIVE).first()
        if model is None:
            raise exceptions.NotFound("No scoring model is active.")
        return Response(ScoringVersionDetailSerializer(model).data)


# --- sign-off ---------------------------------------------------------------------------------


class ScoringNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ScoringSendBackSerializer(serializers.Serializer):
    note = serializers.CharField(
        allow_blank=True, max_length=2000, help_text="Why it goes back (required)."
    )


class ScoringApproveSerializer(ScoringNoteSerializer):
    read_at = AwareDateTimeField(
        help_text="The version's `updated_at` as you read it: a version withdrawn, edited or "
        "proposed again since is refused, so nobody approves what they have not read."
    )


def _person(request):
    """Who signs: the key's acting user, or the signed-in person; None for a key of its own."""
    key = request_api_key(request)
    return key.user_for_permissions() if key is not None else request.user


def _sign_off_schema(summary: str, description: str, request):
    refused = problem(
        status_code=403,
        detail=APPROVERS_ONLY,
        instance="/api/v1/scoring/versions/8/approve/",
        code="permission_denied",
    )
    invalid = problem(
        status_code=400,
        detail="v8 Default model (copy) is Draft; only a proposed version can be approved.",
        instance="/api/v1/scoring/versions/8/approve/",
        code="invalid",
        errors={"status": ["v8 Default model (copy) is Draft; only a proposed version can be "
                           "approved."]},
    )  # fmt: skip
    return extend_schema(
        summary=summary,
        description=f"{description} Scope: `scoring:approve`. Answers the version as it is "
        "afterwards; a refusal is a 403 (role) or a 400 (the sign-off's rule) and changes "
        "nothing.",
        request=request,
        responses={200: ScoringVersionDetailSerializer},
        examples=[
            OpenApiExample("After", value=DETAIL_EXAMPLE, response_only=True),
            OpenApiExample(
                "Not a manager", value=refused, response_only=True, status_codes=["403"]
            ),
            OpenApiExample("Not proposed", value=invalid, response_only=True, status_codes=["400"]),
            *PROBLEM_EXAMPLES,
        ],
        tags=["scoring"],
    )


class _SignOffView(_ScoringView):
    """One step of the sign-off: the role check the pages make, the body, the service."""

    required_scopes = (APPROVE_SCOPE,)
    body = ScoringNoteSerializer
    # who may: the pages' permission and their sentence; whether a key acting as nobody may
    action = Action.SCORING_APPROVE
    refusal = APPROVERS_ONLY
    system_may = False

    def sign(self, model: ScoringModel, person, data: dict) -> None:
        raise NotImplementedError

    @idempotent
    def post(self, request, pk: int):
        model = get_object_or_404(ScoringModel, pk=pk)
        person = _person(request)
        if person is None and not self.system_may:
            raise exceptions.PermissionDenied(NEEDS_A_PERSON)
        if not api_can(request, self.action):
            raise exceptions.PermissionDenied(self.refusal)
        body = self.body(data=request.data)
        body.is_valid(raise_exception=True)
        self.sign(model, person, body.validated_data)
        return Response(ScoringVersionDetailSerializer(get_object_or_404(versions(), pk=pk)).data)


@extend_schema_view(
    post=_sign_off_schema(
        "Propose a draft for sign-off",
        "The draft is frozen and waits for a marketing manager's and a sales manager's "
        "approval. Marketing (or an admin) proposes; a key acting as nobody proposes as "
        "`api:<key name>`.",
        ScoringNoteSerializer,
    )
)
class ProposeView(_SignOffView):
    action = Action.SCORING_PROPOSE
    refusal = EDITORS_ONLY
    system_may = True

    def sign(self, model, person, data) -> None:
        system = "" if person is not None else f"api:{request_api_key(self.request).name}"[:50]
        services.scoring_model_propose(model=model, by=person, system=system, note=data["note"])
        scoring_preview_queue(model.pk)


@extend_schema_view(
    post=_sign_off_schema(
        "Withdraw a proposal",
        "Marketing takes a proposal back to draft; approvals given so far are dropped.",
        ScoringNoteSerializer,
    )
)
class WithdrawView(_SignOffView):
    action = Action.SCORING_PROPOSE
    refusal = EDITORS_ONLY

    def sign(self, model, person, data) -> None:
        services.scoring_model_withdraw(model=model, by=person, note=data["note"])


@extend_schema_view(
    post=_sign_off_schema(
        "Send a proposal back",
        "A marketing or sales manager declines a proposal, saying why; it returns to draft.",
        ScoringSendBackSerializer,
    )
)
class SendBackView(_SignOffView):
    body = ScoringSendBackSerializer

    def sign(self, model, person, data) -> None:
        services.scoring_model_send_back(model=model, by=person, note=data["note"])


@extend_schema_view(
    post=_sign_off_schema(
        "Approve a proposal",
        "One manager's approval (a marketing manager and a sales manager, one each). The "
        "second side's approval puts the version in force, retires the previous one and "
        "queues a full rescore, as on the pages.",
        ScoringApproveSerializer,
    )
)
class ApproveView(_SignOffView):
    body = ScoringApproveSerializer

    def sign(self, model, person, data) -> None:
        services.scoring_model_approve(
            model=model, by=person, note=data["note"], read_at=data["read_at"]
        )
        model.refresh_from_db(fields=["status"])
        if model.status == ModelStatus.PROPOSED:
            scoring_preview_queue(model.pk)


urlpatterns = [
    path("versions/", VersionListView.as_view(), name="api-scoring-versions"),
    path("versions/<int:pk>/", VersionDetailView.as_view(), name="api-scoring-version"),
    path("active/", ActiveVersionView.as_view(), name="api-scoring-active"),
    path("versions/<int:pk>/propose/", ProposeView.as_view(), name="api-scoring-propose"),
    path("versions/<int:pk>/withdraw/", WithdrawView.as_view(), name="api-scoring-withdraw"),
    path("versions/<int:pk>/send-back/", SendBackView.as_view(), name="api-scoring-send-back"),
    path("versions/<int:pk>/approve/", ApproveView.as_view(), name="api-scoring-approve"),
]
