"""The assets API's serializers and examples (content.api.assets has the views)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from content.models import Asset, AssetKind, FunnelStage
from content.services import ALLOWED
from content.sharing import asset_file_url


def _code_schema(choices) -> dict:
    codes = "|".join(choices.values)
    return {
        "type": "string",
        "pattern": f"^({codes})$",
        "description": f"One of: {', '.join(choices.values)}.",
    }


# codes documented as a pattern rather than an enum component (the enum names "kind" and
# "funnel_stage" are taken by other choice sets); content.services checks the value
@extend_schema_field(_code_schema(AssetKind))
class AssetKindField(serializers.CharField):
    pass


@extend_schema_field(_code_schema(FunnelStage))
class FunnelStageField(serializers.CharField):
    pass


# --- what the API answers -------------------------------------------------------------------------


class AssetSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", allow_null=True, default=None)
    file_url = serializers.SerializerMethodField(
        help_text="The uploaded file's address (null for a link)."
    )
    link = serializers.SerializerMethodField(
        help_text="Where the asset is opened: its url, or its file's address."
    )
    kind = AssetKindField()
    funnel_stage = FunnelStageField()

    class Meta:
        model = Asset
        fields = [
            "id",
            "title",
            "kind",
            "funnel_stage",
            "personas",
            "industries",
            "url",
            "file_url",
            "file_name",
            "content_type",
            "file_size",
            "link",
            "owner",
            "campaign",
            "sales_ready",
            "created_at",
            "updated_at",
        ]

    def get_file_url(self, asset: Asset) -> str | None:
        return asset_file_url(asset) if asset.file else None

    def get_link(self, asset: Asset) -> str:
        return asset.url or asset_file_url(asset)


class AssetPageSerializer(serializers.Serializer):
    results = AssetSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class ShareResultSerializer(serializers.Serializer):
    touchpoint_id = serializers.IntegerField()
    asset_id = serializers.IntegerField()
    lead_id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()


class SuggestionSerializer(serializers.Serializer):
    asset = AssetSerializer()
    score = serializers.IntegerField(help_text="How many ways it matches the lead.")
    reasons = serializers.ListField(child=serializers.CharField())
    helped_wins = serializers.IntegerField(
        help_text="Won leads of the lead's industry that had it (shared, engaged or in the "
        "win story)."
    )
    shared_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was last shared with this lead."
    )


class SuggestionsSerializer(serializers.Serializer):
    results = SuggestionSerializer(many=True)


# --- what the API takes ---------------------------------------------------------------------------


class AssetQuerySerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=FunnelStage.choices, required=False)
    industry = serializers.CharField(required=False, max_length=100, allow_blank=True)
    persona = serializers.CharField(required=False, max_length=100, allow_blank=True)
    kind = serializers.ChoiceField(choices=AssetKind.choices, required=False)
    sales_ready = serializers.ChoiceField(
        choices=["true", "false"], required=False, help_text="true or false; both if left out."
    )
    q = serializers.CharField(
        required=False, max_length=200, allow_blank=True, help_text="Words in the title."
    )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
            {"type": "string", "description": "Words separated by commas."},
        ]
    }
)
class TagsField(serializers.Field):
    """A list of words, or one string of words separated by commas (as a form sends it)."""

    default_error_messages = {"invalid": "A list of words, or words separated by commas."}

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = data.split(",")
        if not isinstance(data, list) or not all(isinstance(i, str) for i in data):
            self.fail("invalid")
        if len(data) > 50 or any(len(i) > 100 for i in data):
            raise serializers.ValidationError("At most 50 words of 100 characters.")
        return data

    def to_representation(self, value):
        return value


class AssetWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    kind = AssetKindField(max_length=32)
    funnel_stage = FunnelStageField(max_length=16)
    personas = TagsField(
        required=False,
        help_text='Job titles it is for: ["cfo", "it manager"] (or "CFO, IT manager").',
    )
    industries = TagsField(required=False, help_text='["banking", "retail"]')
    url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="A link (https://...); or send `file` as multipart instead: one or the other.",
    )
    file = serializers.FileField(
        required=False, write_only=True, help_text=f"An upload (multipart): {ALLOWED}."
    )
    campaign = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    sales_ready = serializers.BooleanField(required=False)


class ShareSerializer(serializers.Serializer):
    lead = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="The lead's id.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=1_000, default="")


ASSET_EXAMPLE = {
    "id": 12,
    "title": "How Northbank cut onboarding to a day",
    "kind": "case_study",
    "funnel_stage": "decision",
    "personas": ["cfo", "it manager"],
    "industries": ["banking"],
    "url": "https://example.com/northbank",
    "file_url": None,
    "file_name": "",
    "content_type": "",
    "file_size": None,
    "link": "https://example.com/northbank",
    "owner": "maria",
    "campaign": 3,
    "sales_ready": True,
    "created_at": "2026-11-20T09:00:00Z",
    "updated_at": "2026-11-24T15:12:40Z",
}
ASSET_INPUT_EXAMPLE = {
    "title": "How Northbank cut onboarding to a day",
    "kind": "case_study",
    "funnel_stage": "decision",
    "personas": ["CFO", "IT manager"],
    "industries": ["Banking"],
    "url": "https://example.com/northbank",
    "campaign": 3,
    "sales_ready": True,
}
