"""How webhook endpoints, deliveries and attempts read in the API, with the schema's examples."""

import json

from drf_spectacular.utils import OpenApiExample, extend_schema_field
from rest_framework import serializers

from alignment.api import PROBLEM_EXAMPLES, problem
from alignment.webhooks.models import ALL_EVENTS, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from alignment.webhooks.services import EVENT_TYPES

EVENT_TYPE_CHOICES = [ALL_EVENTS, *EVENT_TYPES]


# --- serializers -------------------------------------------------------------------------------


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = (
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_at",
            "disabled_reason",
            "consecutive_failures",
            "previous_secret_until",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields
        extra_kwargs = {
            "event_types": {"help_text": 'Event types it receives; ["*"] for every type.'},
            "previous_secret_until": {
                "help_text": "After a rotation: until when the old secret signs too."
            },
        }


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(
        help_text="`whsec_` + base64: verify signatures with it. Shown only now."
    )

    class Meta(EndpointSerializer.Meta):
        fields = (*EndpointSerializer.Meta.fields, "secret")
        read_only_fields = fields


class EndpointInputSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=2000, help_text="http(s) URL of a public host that receives the POSTs."
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        allow_empty=False,
        help_text='Event types to receive, or ["*"] for every type.',
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False, default=True)


class EndpointPageSerializer(serializers.Serializer):
    results = EndpointSerializer(many=True)


class AttemptSerializer(serializers.Serializer):
    attempted_at = serializers.DateTimeField()
    trigger = serializers.CharField(help_text="auto, resend or test")
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField(help_text="At most 1 KB of the answer.")
    error = serializers.CharField(help_text="Why no answer came (refused, time-out ...).")


@extend_schema_field({"type": "string", "pattern": f"^({'|'.join(DeliveryStatus.values)})$"})
class DeliveryStatusField(serializers.ChoiceField):
    """A pattern, not an enum, in the schema: other components' `status` enums would collide."""

    def __init__(self, **kwargs):
        super().__init__(choices=DeliveryStatus.choices, **kwargs)


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.IntegerField(allow_null=True, help_text="Null for a test message.")
    status = DeliveryStatusField(help_text="pending (retries to come), succeeded or failed.")

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "msg_id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
        )
        read_only_fields = fields
        extra_kwargs = {
            "msg_id": {"help_text": "The `webhook-id` header and the body's `id`."},
            "attempts": {"help_text": "Attempts in the current round (a resend starts one)."},
        }


class DeliveryDetailSerializer(DeliverySerializer):
    body = serializers.SerializerMethodField(help_text="The JSON body that is signed and sent.")
    attempt_log = AttemptSerializer(many=True, help_text="Every attempt, newest first.")

    class Meta(DeliverySerializer.Meta):
        fields = (*DeliverySerializer.Meta.fields, "body", "attempt_log")
        read_only_fields = fields

    def get_body(self, delivery) -> dict:
        return json.loads(delivery.body)


class EventTypesSerializer(serializers.Serializer):
    event_types = serializers.ListField(child=serializers.CharField())


class DeliveryPageSerializer(serializers.Serializer):
    results = DeliverySerializer(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


# --- examples ----------------------------------------------------------------------------------

ENDPOINT_EXAMPLE = {
    "id": 3,
    "url": "https://crm.example.com/hooks/pipeline",
    "description": "HubSpot sync",
    "event_types": ["lead.stage_changed", "lead.assigned"],
    "is_active": True,
    "disabled_at": None,
    "disabled_reason": "",
    "consecutive_failures": 0,
    "previous_secret_until": None,
    "created_at": "2026-12-01T09:00:00Z",
    "updated_at": "2026-12-01T09:00:00Z",
}
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DELIVERY_EXAMPLE = {
    "id": 812,
    "msg_id": "evt_48213",
    "event_id": 48213,
    "event_type": "lead.stage_changed",
    "status": "pending",
    "attempts": 2,
    "next_attempt_at": "2026-12-01T09:02:41Z",
    "last_status_code": 500,
    "last_error": "The receiver answered HTTP 500.",
    "created_at": "2026-12-01T09:00:03Z",
    "finished_at": None,
}
ATTEMPT_EXAMPLE = {
    "attempted_at": "2026-12-01T09:00:33Z",
    "trigger": "auto",
    "succeeded": False,
    "status_code": 500,
    "latency_ms": 84,
    "response_excerpt": "Internal Server Error",
    "error": "",
}
FORBIDDEN_EXAMPLE = OpenApiExample(
    "Missing scope",
    value=problem(
        status_code=403,
        detail="This API key lacks the scope(s): webhooks:manage.",
        instance="/api/v1/webhooks/",
        code="permission_denied",
    ),
    response_only=True,
    status_codes=["403"],
)
PRIVATE_URL_MESSAGE = (
    "crm.internal resolves to 10.0.0.5, which is a private or reserved address; webhooks only "
    "go to public addresses."
)
BAD_URL_EXAMPLE = OpenApiExample(
    "A private address",
    value=problem(
        status_code=400,
        detail=PRIVATE_URL_MESSAGE,
        instance="/api/v1/webhooks/",
        code="invalid",
        errors={"url": [PRIVATE_URL_MESSAGE]},
    ),
    response_only=True,
    status_codes=["400"],
)
COMMON_EXAMPLES = [FORBIDDEN_EXAMPLE, *PROBLEM_EXAMPLES]
