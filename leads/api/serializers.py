"""How a lead reads in the API, in webhook bodies and in the event feed: one representation."""

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alignment.api_base import TextOnlyField
from leads.lifecycle import STAGE_TIMESTAMP
from leads.models import LEAD_TEXT_FIELDS, Campaign, Lead, Source, normalise_key
from sla.api.clocks import SlaClockSerializer

# what a list or a webhook loads with each lead so that serializing it runs no further query
LEAD_RELATED = ("owner", "source", "campaign", "last_reason")


class LeadOwnerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()


class LeadCampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class LeadSerializer(serializers.ModelSerializer):
    """A lead as it is now: identity, person and company, attribution, owner, stage and score."""

    source = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)
    campaign = LeadCampaignSerializer(read_only=True, allow_null=True)
    owner = LeadOwnerSerializer(read_only=True, allow_null=True)
    last_reason = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Lead
        fields = (
            "id",
            "external_id",
            "email",
            *LEAD_TEXT_FIELDS,
            "company_size",
            "source",
            "campaign",
            "attributes",
            "owner",
            "assigned_at",
            "stage",
            "stage_changed_at",
            "mql_at",
            "sal_at",
            "sql_at",
            "opportunity_at",
            "won_at",
            "lost_at",
            "rejected_at",
            "recycled_at",
            "mql_count",
            "first_sales_touch_at",
            "deal_value",
            "last_reason",
            "fit_score",
            "engagement_score",
            "score",
            "grade",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


def lead_data(lead: Lead) -> dict:
    """The lead as a plain dict (webhook bodies, the event feed): load LEAD_RELATED with it."""
    return LeadSerializer(lead).data


# --- what a client sends ----------------------------------------------------------------------

EXTERNAL_ID_MAX_LENGTH = Lead._meta.get_field("external_id").max_length

# what names a lead: set when it is created (or by an upsert on a lead that lacks one)
IDENTITY_FIELDS = ("email", "external_id")

# what a client may read but never send, and what changes it instead; any other field of the
# lead is set by the system
_PIPELINE = frozenset(
    {"stage", "stage_changed_at", "first_mql_at", "mql_count", "deal_value", "last_reason"}
    | set(STAGE_TIMESTAMP.values())
)
_OWNER = frozenset({"owner", "assigned_at"})
_SCORE = frozenset({"score", "fit_score", "engagement_score", "grade"})
_MODEL_FIELDS = frozenset(f.name for f in Lead._meta.concrete_fields)


def not_writable(name: str) -> str:
    """Why a field cannot be sent (a lead's own field), or where custom data goes instead."""
    if name in _PIPELINE:
        return (
            "The stage changes only through a pipeline action: "
            "POST /api/v1/leads/{id}/transitions/ (scope pipeline:write)."
        )
    if name in _OWNER:
        return (
            "The owner changes only through routing or a reassignment: "
            "POST /api/v1/leads/{id}/assignment/ (scope pipeline:write)."
        )
    if name in _SCORE:
        return (
            "The score is computed by the active scoring model from the lead's data and "
            "touchpoints; send those instead (touchpoints: POST /api/v1/touchpoints/)."
        )
    if name in _MODEL_FIELDS:
        return "This field is set by the system."
    return f'Unknown field: custom data goes in attributes ({{"attributes": {{"{name}": ...}}}}).'


class SourceKeyField(serializers.SlugRelatedField):
    """A source by its key; `Google Ads` and `google_ads` name the same one. Unknown keys are
    refused: sources are set up in the app, not by a typo in a sync."""

    default_error_messages = {
        "does_not_exist": "There is no source with key “{value}”.",
        "invalid": "Give a source key, e.g. google_ads.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="key", queryset=Source.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(normalise_key(data) or data)


@extend_schema_field({"type": "integer", "minimum": 1, "nullable": True})
class CampaignIdField(serializers.PrimaryKeyRelatedField):
    default_error_messages = {
        "does_not_exist": "There is no campaign with id {pk_value}.",
        "incorrect_type": "Give a campaign id (a number).",
    }

    def __init__(self, **kwargs):
        super().__init__(queryset=Campaign.objects.all(), **kwargs)

    def to_internal_value(self, data):
        # a number past the database's range names no campaign (and must not reach the query)
        if isinstance(data, int) and not isinstance(data, bool) and not 0 < data < 2**63:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class _EmailOnly(TextOnlyField, serializers.EmailField):
    pass


class LeadInputSerializer(serializers.ModelSerializer):
    """A lead's own data as a client sends it (create, upsert): only known fields; anything
    custom goes in `attributes`, which is merged into the lead's attributes key by key."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: TextOnlyField,
        models.TextField: TextOnlyField,
        models.EmailField: _EmailOnly,
    }

    source = SourceKeyField(required=False, allow_null=True, help_text="A source key.")
    campaign = CampaignIdField(required=False, allow_null=True, help_text="A campaign id.")
    attributes = serializers.DictField(
        required=False,
        help_text="Custom data, merged key by key into the lead's attributes (keys normalised "
        "to lower_snake_case).",
    )

    class Meta:
        model = Lead
        fields = (
            "email",
            "external_id",
            *LEAD_TEXT_FIELDS,
            "company_size",
            "source",
            "campaign",
            "attributes",
        )
        # a lead that already exists is the view's answer (409 or an update), not a field error
        extra_kwargs = {
            "email": {"validators": []},
            "external_id": {"validators": [], "allow_blank": False},
            "company_size": {"max_value": 2_147_483_647},
        }

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for name in data:
                if name in self.fields:
                    continue
                errors[name] = [not_writable(name)]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class LeadCreateSerializer(LeadInputSerializer):
    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("external_id"):
            raise serializers.ValidationError(
                {"email": ["A lead needs an email or an external id."]}
            )
        return attrs


class LeadUpsertSerializer(LeadInputSerializer):
    """The body of PUT /leads/external/{external_id}/: the URL names the lead (context
    `external_id`); the body may repeat it, but not name another."""

    class Meta(LeadInputSerializer.Meta):
        fields = tuple(f for f in LeadInputSerializer.Meta.fields if f != "external_id")

    def to_internal_value(self, data):
        named = self.context.get("external_id", "")
        errors = {}
        if not named or len(named) > EXTERNAL_ID_MAX_LENGTH:
            errors["external_id"] = [
                f"An external id has 1 to {EXTERNAL_ID_MAX_LENGTH} characters."
            ]
        if isinstance(data, dict) and "external_id" in data:
            if str(data["external_id"] or "").strip() != named:
                errors["external_id"] = [
                    "The URL names the external id; leave it out of the body or send the same."
                ]
            data = {k: v for k, v in data.items() if k != "external_id"}
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class LeadPatchSerializer(LeadInputSerializer):
    """The fields to change; those left out stay as they are."""

    class Meta(LeadInputSerializer.Meta):
        fields = tuple(f for f in LeadInputSerializer.Meta.fields if f not in IDENTITY_FIELDS)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            given = sorted(set(data) & set(IDENTITY_FIELDS))
            if given:
                raise serializers.ValidationError(
                    {
                        name: [
                            "Email and external id identify the lead and are not changed here; "
                            "PUT /api/v1/leads/external/{external_id}/ adds an external id or "
                            "an email to a lead that has none."
                        ]
                        for name in given
                    }
                )
        return super().to_internal_value(data)


# --- what the API answers ---------------------------------------------------------------------


class LeadPageSerializer(serializers.Serializer):
    results = LeadSerializer(many=True)
    next = serializers.URLField(
        allow_null=True, help_text="The next page (same filters and ordering); null at the end."
    )
    next_cursor = serializers.CharField(
        allow_null=True, help_text="The `cursor` of the next page; null at the end."
    )


class ScoreExplanationSerializer(serializers.Serializer):
    """Why the lead scores what it scores now (the lead page's explanation)."""

    model = serializers.DictField(help_text="The scoring version: id, label, name.")
    at = serializers.DateTimeField()
    fit = serializers.DictField(help_text="score, the fit rules that matched, capped groups.")
    engagement = serializers.DictField(
        help_text="score, half-life, engagement rules with occurrences and decayed points."
    )
    total = serializers.FloatField()
    grade = serializers.CharField(allow_blank=True)
    mql = serializers.DictField(help_text="The MQL thresholds, whether it qualifies, how short.")


class LeadDetailSerializer(LeadSerializer):
    # the view sets these two on the lead it serializes (leads.api.leads.lead_detail_data)
    score_explanation = ScoreExplanationSerializer(
        source="api_score_explanation",
        read_only=True,
        allow_null=True,
        help_text="Null when no scoring version is active.",
    )
    sla_clocks = SlaClockSerializer(
        source="api_sla_clocks",
        many=True,
        read_only=True,
        help_text="The clocks of the last assignments, newest first.",
    )

    class Meta(LeadSerializer.Meta):
        fields = (*LeadSerializer.Meta.fields, "score_explanation", "sla_clocks")
        read_only_fields = fields


class LeadUpsertResultSerializer(serializers.Serializer):
    result = serializers.ChoiceField(
        choices=["created", "updated", "unchanged"],
        help_text="created (201), updated or unchanged (200).",
    )
    lead = LeadSerializer()
