"""Win and loss stories over REST: GET/POST /api/v1/stories/, GET/PATCH /api/v1/stories/{id}/,
GET /api/v1/story-reasons/. Scopes `feedback:read` and `feedback:write`; a story is told by a
person (a session, or a key acting as the rep or a sales manager), through
content.stories.services.story_record like the lead page's card."""

from django.db.models import Prefetch
from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES
from alignment.api_base import AwareDateTimeField, require_team_member
from alignment.idempotency import idempotent
from content.models import Asset, DealStory, StoryOutcome
from content.stories.services import COMPETITOR_MAX, SENTENCE_MAX, latest_close, story_record
from leads.api.leads import api_person
from leads.api.pagination import CURSOR_PARAMETERS, MAX_ID, Keyset, keyset_response
from leads.models import Lead, Reason, StageChange

READ, WRITE = ("feedback:read",), ("feedback:write",)
ORDER = Keyset("-id")
MAX_REASONS = 20
MAX_ASSETS = 50

# --- serializers ---------------------------------------------------------------------------------


class _Text(serializers.CharField):
    """A JSON string only (a number is not a sentence)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _Id(serializers.IntegerField):
    """A JSON integer only (not "12", 12.0 or true)."""

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StoryReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()


class StoryAssetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class StorySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = serializers.IntegerField(source="lead_id")
    stage_change = serializers.IntegerField(
        source="stage_change_id", help_text="The close: the lead's move to won or lost."
    )
    outcome = serializers.ChoiceField(choices=StoryOutcome.choices)
    reasons = StoryReasonSerializer(many=True, source="reasons.all")
    sentence = serializers.CharField()
    competitor = serializers.CharField()
    assets = StoryAssetSerializer(many=True, source="assets.all", help_text="Content that helped.")
    source = serializers.IntegerField(
        source="source_id", allow_null=True, help_text="The lead's source when first told."
    )
    campaign = serializers.IntegerField(
        source="campaign_id", allow_null=True, help_text="The lead's campaign when first told."
    )
    closed_at = serializers.DateTimeField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True)
    recorded_at = serializers.DateTimeField()


class StoryPageSerializer(serializers.Serializer):
    results = StorySerializer(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class StoryInputSerializer(serializers.Serializer):
    lead = _Id(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Tell the story of this lead's latest close (won or lost).",
    )
    stage_change = _Id(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Or name the close itself: a stage change to won or lost.",
    )
    reasons = serializers.ListField(
        child=_Text(max_length=50),
        max_length=MAX_REASONS,
        help_text="Reason codes of the outcome (GET /api/v1/story-reasons/); at least one.",
    )
    sentence = _Text(
        required=False,
        allow_blank=True,
        max_length=SENTENCE_MAX,
        help_text="One sentence in the rep's words; needed with a reason such as `other`.",
    )
    competitor = _Text(
        required=False,
        allow_blank=True,
        max_length=COMPETITOR_MAX,
        help_text="Lost only: who won it; needed with the lost reason `competitor`.",
    )
    assets = serializers.ListField(
        child=_Id(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=MAX_ASSETS,
        help_text="Won only: the ids of the library's assets that helped.",
    )


class StoryPatchSerializer(StoryInputSerializer):
    def get_fields(self):
        fields = super().get_fields()
        del fields["lead"], fields["stage_change"]
        return fields


class StoryReasonsSerializer(serializers.Serializer):
    won = StoryReasonSerializer(many=True)
    lost = StoryReasonSerializer(many=True)


class StoryFiltersSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=StoryOutcome.choices, required=False)
    lead = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    since = AwareDateTimeField(required=False)
    until = AwareDateTimeField(required=False)


# --- examples -------------------------------------------------------------------------------------

STORY_EXAMPLE = {
    "id": 12,
    "lead": 4411,
    "stage_change": 90210,
    "outcome": "lost",
    "reasons": [{"code": "competitor", "label": "Chose a competitor"}],
    "sentence": "They liked our product but Acme bundled it with their ERP.",
    "competitor": "Acme",
    "assets": [],
    "source": 2,
    "campaign": 7,
    "closed_at": "2026-11-30T15:04:00Z",
    "recorded_by": "rita",
    "recorded_at": "2026-11-30T15:10:00Z",
}
FILTERS = ("outcome", "lead", "since", "until")
FILTER_PARAMETERS = [
    OpenApiParameter("outcome", enum=StoryOutcome.values, required=False),
    OpenApiParameter(
        "lead", type={"type": "integer", "minimum": 1, "maximum": MAX_ID}, required=False
    ),
    OpenApiParameter(
        "since",
        type={"type": "string", "format": "date-time"},
        required=False,
        description="Closed at or after (ISO 8601 with its offset).",
    ),
    OpenApiParameter(
        "until",
        type={"type": "string", "format": "date-time"},
        required=False,
        description="Closed before (ISO 8601 with its offset).",
    ),
    *CURSOR_PARAMETERS,
]


def _stories():
    return DealStory.objects.select_related("recorded_by").prefetch_related(
        Prefetch("reasons", queryset=Reason.objects.order_by("position", "label")),
        Prefetch("assets", queryset=Asset.objects.order_by("title", "id")),
    )


def _teller(request):
    return api_person(
        request, "A story is told by a person: use a key acting as the rep or a sales manager."
    )


def _invalid(field: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({field: [message]})


def _close_named(data: dict) -> StageChange:
    if ("lead" in data) == ("stage_change" in data):
        raise _invalid("lead", "Name the close by `lead` (its latest close) or `stage_change`.")
    if "stage_change" in data:
        close = StageChange.objects.filter(pk=data["stage_change"]).first()
        if close is None:
            raise _invalid("stage_change", f"There is no stage change {data['stage_change']}.")
        return close
    lead = Lead.objects.filter(pk=data["lead"]).first()
    if lead is None:
        raise _invalid("lead", f"There is no lead {data['lead']}.")
    close = latest_close(lead)
    if close is None:
        raise _invalid("lead", f"Lead {lead.pk} was never won or lost: there is no story to tell.")
    return close


def _answer(story: DealStory, status: int = 200) -> Response:
    return Response(StorySerializer(_stories().get(pk=story.pk)).data, status=status)


# --- views ---------------------------------------------------------------------------------------


class StoryListView(APIView):
    required_scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="stories_list",
        summary="List win and loss stories",
        description="The stories reps told about their closed deals, newest first, in cursor "
        "pages: follow `next` until it is null. Filter by `outcome`, `lead` and the close "
        "time (`since`, `until`). Scope: `feedback:read`.",
        parameters=FILTER_PARAMETERS,
        responses={200: StoryPageSerializer},
        examples=[
            OpenApiExample(
                "A page",
                value={"results": [STORY_EXAMPLE], "next": None, "next_cursor": None},
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["stories"],
    )
    def get(self, request):
        require_team_member(request)
        blank = [
            name
            for name in FILTERS
            if name in request.query_params and not request.query_params[name].strip()
        ]
        if blank:
            raise _invalid(blank[0], "Give a value or leave the parameter out.")
        filters = StoryFiltersSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = _stories()
        if "outcome" in f:
            qs = qs.filter(outcome=f["outcome"])
        if "lead" in f:
            qs = qs.filter(lead_id=f["lead"])
        if "since" in f:
            qs = qs.filter(closed_at__gte=f["since"])
        if "until" in f:
            qs = qs.filter(closed_at__lt=f["until"])
        return keyset_response(request, ORDER, qs, StorySerializer)

    @extend_schema(
        operation_id="stories_record",
        summary="Tell the story of a close",
        description="Why a deal was won or lost, told once per close: name the lead (its "
        "latest move to won or lost) or the stage change. Telling it again changes the same "
        "story (200) instead of creating one (201); either way a `story.recorded` event. A rep "
        "tells it for a lead he owns, a sales manager or an admin for any. Scope: "
        "`feedback:write`, with a key acting as a person.",
        request=StoryInputSerializer,
        responses={200: StorySerializer, 201: StorySerializer},
        examples=[
            OpenApiExample(
                "A lost deal",
                value={
                    "lead": 4411,
                    "reasons": ["competitor"],
                    "sentence": "They liked our product but Acme bundled it with their ERP.",
                    "competitor": "Acme",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Told", value=STORY_EXAMPLE, response_only=True, status_codes=["201", "200"]
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["stories"],
    )
    @idempotent
    def post(self, request):
        by = _teller(request)
        data = StoryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        close = _close_named(values)
        existed = DealStory.objects.filter(stage_change=close).exists()
        story = story_record(
            stage_change=close,
            by=by,
            reasons=values["reasons"],
            sentence=values.get("sentence", ""),
            competitor=values.get("competitor", ""),
            assets=values.get("assets", []),
        )
        return _answer(story, status=200 if existed else 201)


class StoryDetailView(APIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}

    def story(self, pk: int) -> DealStory:
        story = _stories().filter(pk=pk).first() if 0 < pk <= MAX_ID else None
        if story is None:
            raise exceptions.NotFound(f"There is no story {pk}.")
        return story

    @extend_schema(
        operation_id="stories_retrieve",
        summary="Read a story",
        description="One win or loss story. Scope: `feedback:read`.",
        responses={200: StorySerializer},
        examples=[OpenApiExample("Story", value=STORY_EXAMPLE), *PROBLEM_EXAMPLES],
        tags=["stories"],
    )
    def get(self, request, pk: int):
        require_team_member(request)
        return Response(StorySerializer(self.story(pk)).data)

    @extend_schema(
        operation_id="stories_update",
        summary="Change a story",
        description="Change the reasons, the sentence, the competitor or the content that "
        "helped (fields left out stay as they are); a `story.recorded` event again. Scope: "
        "`feedback:write`, with a key acting as the rep or a sales manager.",
        request=StoryPatchSerializer(partial=True),
        responses={200: StorySerializer},
        examples=[
            OpenApiExample("A better sentence", value={"sentence": "Price."}, request_only=True),
            OpenApiExample("Changed", value=STORY_EXAMPLE, response_only=True),
            *PROBLEM_EXAMPLES,
        ],
        tags=["stories"],
    )
    def patch(self, request, pk: int):
        by = _teller(request)
        story = self.story(pk)
        data = StoryPatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        story = story_record(
            stage_change=story.stage_change,
            by=by,
            reasons=values.get("reasons", [r.code for r in story.reasons.all()]),
            sentence=values.get("sentence", story.sentence),
            competitor=values.get("competitor", story.competitor),
            assets=values.get("assets", [a.pk for a in story.assets.all()]),
        )
        return _answer(story)


class StoryReasonsView(APIView):
    required_scopes = READ

    @extend_schema(
        operation_id="story_reasons",
        summary="Reason codes of win and loss stories",
        description="The active reason codes a story picks from, by outcome, in their order. "
        "Scope: `feedback:read`.",
        responses={200: StoryReasonsSerializer},
        examples=[
            OpenApiExample(
                "Codes",
                value={
                    "won": [{"code": "product_fit", "label": "Product fit"}],
                    "lost": [{"code": "competitor", "label": "Chose a competitor"}],
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
        tags=["stories"],
    )
    def get(self, request):
        require_team_member(request)
        reasons = Reason.objects.filter(kind__in=StoryOutcome.values, active=True).order_by(
            "position", "label"
        )
        data = {outcome: [] for outcome in StoryOutcome.values}
        for r in reasons:
            data[r.kind].append({"code": r.code, "label": r.label})
        return Response(StoryReasonsSerializer(data).data)


urlpatterns = [
    path("stories/", StoryListView.as_view(), name="api-stories"),
    path("stories/<int:pk>/", StoryDetailView.as_view(), name="api-story"),
    path("story-reasons/", StoryReasonsView.as_view(), name="api-story-reasons"),
]
