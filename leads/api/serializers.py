"""How a lead reads in the API, in webhook bodies and in the event feed: one representation."""

from rest_framework import serializers

from leads.models import LEAD_TEXT_FIELDS, Lead

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
