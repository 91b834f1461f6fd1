"""Webhook endpoints and their delivery logs over REST, scope `webhooks:manage`.

A key acting as a person is held to that person's role as well (admins only); a key of its own
to its scope. The secret is answered only by create and rotate-secret."""

import json

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES, api_can, problem
from alignment.api_auth import ScopePermission
from alignment.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from alignment.permissions import Action
from alignment.webhooks.models import (
    ALL_EVENTS,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from alignment.webhooks.services import (
    EVENT_TYPES,
    delivery_resend,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_update,
)
from leads.api.pagination import CURSOR_PARAMETERS, Keyset, page_size_of

SCOPE = "webhooks:manage"
SCOPE_NOTE = "Scope: `webhooks:manage`; a key acting as a person needs an admin."
EVENT_TYPE_CHOICES = [ALL_EVENTS, *EVENT_TYPES]
_deliveries_keyset = Keyset("-id")


class CanManageWebhooks(permissions.BasePermission):
    message = "Only an admin manages webhooks."

    def has_permission(self, request, view) -> bool:
        return api_can(request, Action.WEBHOOKS_MANAGE)


def _by(request):
    """The person acting, or None for a key of its own (its scope was the check)."""
    return request.user if getattr(request.user, "pk", None) is not None else None


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


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.IntegerField(allow_null=True, help_text="Null for a test message.")

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
BAD_URL_EXAMPLE = OpenApiExample(
    "A private address",
    value=problem(
        status_code=400,
        detail="10.0.0.5 resolves to 10.0.0.5, a private or reserved address; webhooks only go "
        "to public addresses.",
        instance="/api/v1/webhooks/",
        code="invalid",
        errors={"url": ["10.0.0.5 resolves to 10.0.0.5, a private or reserved address; ..."]},
    ),
    response_only=True,
    status_codes=["400"],
)
COMMON_EXAMPLES = [FORBIDDEN_EXAMPLE, *PROBLEM_EXAMPLES]


class _WebhookView(APIView):
    required_scopes = (SCOPE,)
    permission_classes = [permissions.IsAuthenticated, ScopePermission, CanManageWebhooks]

    def endpoint(self, pk: int) -> WebhookEndpoint:
        return get_object_or_404(WebhookEndpoint, pk=pk)


# --- views -------------------------------------------------------------------------------------


class EndpointListView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_list",
        summary="List webhook endpoints",
        description=f"Every subscription, oldest first (no secrets). {SCOPE_NOTE}",
        responses={200: EndpointPageSerializer},
        examples=[
            OpenApiExample("Endpoints", value={"results": [ENDPOINT_EXAMPLE]}, response_only=True),
            *COMMON_EXAMPLES,
        ],
    )
    def get(self, request):
        rows = WebhookEndpoint.objects.order_by("id")
        return Response({"results": EndpointSerializer(rows, many=True).data})

    @extend_schema(
        operation_id="webhooks_create",
        summary="Create a webhook endpoint",
        description="Subscribe a URL to event types. The answer carries the signing `secret`, "
        "which is never shown again (rotate it to get a new one). The URL must be http(s) and "
        f"resolve only to public addresses. {SCOPE_NOTE}",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=EndpointInputSerializer,
        responses={201: EndpointWithSecretSerializer},
        examples=[
            OpenApiExample(
                "Subscribe to stage changes",
                value={
                    "url": "https://crm.example.com/hooks/pipeline",
                    "event_types": ["lead.stage_changed", "lead.assigned"],
                    "description": "HubSpot sync",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created",
                value={**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE},
                response_only=True,
                status_codes=["201"],
            ),
            BAD_URL_EXAMPLE,
            *COMMON_EXAMPLES,
        ],
    )
    @idempotent
    def post(self, request):
        data = EndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, _ = endpoint_create(**data.validated_data, by=_by(request))
        response = Response(EndpointWithSecretSerializer(endpoint).data, status=201)
        response["Location"] = reverse("api-webhook", args=[endpoint.pk])
        return response


class EndpointDetailView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_retrieve",
        summary="Read a webhook endpoint",
        description=f"One subscription (no secret). {SCOPE_NOTE}",
        responses={200: EndpointSerializer},
        examples=[OpenApiExample("Endpoint", value=ENDPOINT_EXAMPLE), *COMMON_EXAMPLES],
    )
    def get(self, request, pk: int):
        return Response(EndpointSerializer(self.endpoint(pk)).data)

    @extend_schema(
        operation_id="webhooks_update",
        summary="Change a webhook endpoint",
        description="Change the URL, event types, description or active flag (fields left out "
        "stay as they are). Enabling a disabled endpoint clears its failure count; deliveries "
        f"it missed while disabled can be resent one by one. {SCOPE_NOTE}",
        request=EndpointInputSerializer(partial=True),
        responses={200: EndpointSerializer},
        examples=[
            OpenApiExample("Enable again", value={"is_active": True}, request_only=True),
            OpenApiExample("Changed", value=ENDPOINT_EXAMPLE, response_only=True),
            BAD_URL_EXAMPLE,
            *COMMON_EXAMPLES,
        ],
    )
    def patch(self, request, pk: int):
        endpoint = self.endpoint(pk)
        data = EndpointInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        endpoint = endpoint_update(endpoint=endpoint, by=_by(request), **fields)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhooks_delete",
        summary="Delete a webhook endpoint",
        description=f"Stops its deliveries and deletes its delivery log. {SCOPE_NOTE}",
        responses={204: None},
        examples=COMMON_EXAMPLES,
    )
    def delete(self, request, pk: int):
        endpoint_delete(endpoint=self.endpoint(pk), by=_by(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateSecretView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        summary="Rotate an endpoint's secret",
        description="A new signing secret, answered once. For 24 hours every message carries two "
        "signatures (new and old secret), so the receiver can switch without losing one. "
        f"{SCOPE_NOTE}",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: EndpointWithSecretSerializer},
        examples=[
            OpenApiExample(
                "Rotated",
                value={
                    **ENDPOINT_EXAMPLE,
                    "previous_secret_until": "2026-12-02T09:00:00Z",
                    "secret": SECRET_EXAMPLE,
                },
                response_only=True,
            ),
            *COMMON_EXAMPLES,
        ],
    )
    @idempotent
    def post(self, request, pk: int):
        endpoint, _ = endpoint_rotate_secret(endpoint=self.endpoint(pk), by=_by(request))
        return Response(EndpointWithSecretSerializer(endpoint).data)


class SendTestView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_test",
        summary="Send a test message",
        description="Queues one signed `webhook.test` message to the endpoint (also when it is "
        "disabled; tried once, not counted towards disabling). Its outcome is in the "
        f"delivery log. {SCOPE_NOTE}",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={202: DeliverySerializer},
        examples=[
            OpenApiExample(
                "Queued",
                value={
                    **DELIVERY_EXAMPLE,
                    "msg_id": "test_4f1c2b0e9d8a4c7e",
                    "event_id": None,
                    "event_type": "webhook.test",
                    "attempts": 0,
                    "last_status_code": None,
                    "last_error": "",
                },
                response_only=True,
                status_codes=["202"],
            ),
            *COMMON_EXAMPLES,
        ],
    )
    @idempotent
    def post(self, request, pk: int):
        delivery = endpoint_send_test(endpoint=self.endpoint(pk), by=_by(request))
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryListView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_list",
        summary="List an endpoint's deliveries",
        description="Newest first, a cursor page at a time; `status` filters (pending, "
        f"succeeded, failed). {SCOPE_NOTE}",
        parameters=[
            OpenApiParameter(
                "status",
                type=str,
                enum=DeliveryStatus.values,
                required=False,
                description="Filter.",
            ),
            *CURSOR_PARAMETERS,
        ],
        responses={200: DeliveryPageSerializer},
        examples=[
            OpenApiExample(
                "Deliveries",
                value={"results": [DELIVERY_EXAMPLE], "next": None, "next_cursor": None},
                response_only=True,
            ),
            *COMMON_EXAMPLES,
        ],
    )
    def get(self, request, pk: int):
        endpoint = self.endpoint(pk)
        qs = WebhookDelivery.objects.filter(endpoint=endpoint)
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in DeliveryStatus.values:
                raise exceptions.ValidationError(
                    {"status": [f"One of: {', '.join(DeliveryStatus.values)}."]}
                )
            qs = qs.filter(status=wanted)
        rows, cursor = _deliveries_keyset.page(
            qs,
            cursor=request.query_params.get("cursor"),
            size=page_size_of(request.query_params),
        )
        next_url = (
            replace_query_param(request.build_absolute_uri(), "cursor", cursor) if cursor else None
        )
        return Response(
            {
                "results": DeliverySerializer(rows, many=True).data,
                "next": next_url,
                "next_cursor": cursor,
            }
        )


class DeliveryDetailView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_retrieve",
        summary="Read a delivery and its attempts",
        description="The body that was signed and sent, and every attempt (status code, "
        f"latency, the first KB of the answer, or the error). {SCOPE_NOTE}",
        responses={200: DeliveryDetailSerializer},
        examples=[
            OpenApiExample(
                "Delivery",
                value={
                    **DELIVERY_EXAMPLE,
                    "body": {
                        "id": "evt_48213",
                        "type": "lead.stage_changed",
                        "timestamp": "2026-12-01T09:00:02Z",
                        "data": {"event": {"id": 48213}, "lead": {"id": 1042}},
                    },
                    "attempt_log": [ATTEMPT_EXAMPLE],
                },
                response_only=True,
            ),
            *COMMON_EXAMPLES,
        ],
    )
    def get(self, request, pk: int, delivery_id: int):
        delivery = get_object_or_404(
            WebhookDelivery.objects.prefetch_related("attempt_log"), pk=delivery_id, endpoint_id=pk
        )
        return Response(DeliveryDetailSerializer(delivery).data)


class ResendView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_resend",
        summary="Resend a delivery",
        description="Sends the same body under the same `webhook-id` again now, with a fresh "
        "round of retries (receivers deduplicate on `webhook-id`). Refused while the endpoint "
        f"is disabled. {SCOPE_NOTE}",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={202: DeliverySerializer},
        examples=[
            OpenApiExample(
                "Queued again",
                value={**DELIVERY_EXAMPLE, "attempts": 0},
                response_only=True,
                status_codes=["202"],
            ),
            *COMMON_EXAMPLES,
        ],
    )
    @idempotent
    def post(self, request, pk: int, delivery_id: int):
        delivery = get_object_or_404(WebhookDelivery, pk=delivery_id, endpoint_id=pk)
        delivery = delivery_resend(delivery=delivery, by=_by(request))
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventTypesView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_event_types",
        summary="Event types an endpoint can subscribe to",
        description=f'Every event type; `"*"` subscribes to all of them. {SCOPE_NOTE}',
        responses={200: EventTypesSerializer},
        examples=[
            OpenApiExample(
                "Types",
                value={"event_types": ["*", "lead.created", "lead.stage_changed"]},
                response_only=True,
            ),
            *COMMON_EXAMPLES,
        ],
    )
    def get(self, request):
        return Response({"event_types": EVENT_TYPE_CHOICES})


urlpatterns = [
    path("", EndpointListView.as_view(), name="api-webhooks"),
    path("event-types/", EventTypesView.as_view(), name="api-webhook-event-types"),
    path("<int:pk>/", EndpointDetailView.as_view(), name="api-webhook"),
    path("<int:pk>/rotate-secret/", RotateSecretView.as_view(), name="api-webhook-rotate-secret"),
    path("<int:pk>/test/", SendTestView.as_view(), name="api-webhook-test"),
    path("<int:pk>/deliveries/", DeliveryListView.as_view(), name="api-webhook-deliveries"),
    path(
        "<int:pk>/deliveries/<int:delivery_id>/",
        DeliveryDetailView.as_view(),
        name="api-webhook-delivery",
    ),
    path(
        "<int:pk>/deliveries/<int:delivery_id>/resend/",
        ResendView.as_view(),
        name="api-webhook-delivery-resend",
    ),
]
