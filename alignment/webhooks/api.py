"""Webhook endpoints and their delivery logs over REST, scope `webhooks:manage`.

A key acting as a person is held to that person's role as well (admins only); a key of its own
to its scope. The secret is answered only by create and rotate-secret."""

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import api_can
from alignment.api_auth import ScopePermission
from alignment.idempotency import idempotent
from alignment.permissions import Action
from alignment.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from alignment.webhooks.serializers import (
    ATTEMPT_EXAMPLE,
    BAD_URL_EXAMPLE,
    COMMON_EXAMPLES,
    DELIVERY_EXAMPLE,
    ENDPOINT_EXAMPLE,
    EVENT_TYPE_CHOICES,
    SECRET_EXAMPLE,
    DeliveryDetailSerializer,
    DeliveryPageSerializer,
    DeliverySerializer,
    EndpointInputSerializer,
    EndpointPageSerializer,
    EndpointSerializer,
    EndpointWithSecretSerializer,
    EventTypesSerializer,
)
from alignment.webhooks.services import (
    delivery_resend,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_update,
)
from leads.api.pagination import CURSOR_PARAMETERS, Keyset, keyset_response

SCOPE = "webhooks:manage"
SCOPE_NOTE = "Scope: `webhooks:manage`; a key acting as a person needs an admin."
_deliveries_keyset = Keyset("-id")


class CanManageWebhooks(permissions.BasePermission):
    message = "Only an admin manages webhooks."

    def has_permission(self, request, view) -> bool:
        return api_can(request, Action.WEBHOOKS_MANAGE)


def _by(request):
    """The person acting, or None for a key of its own (its scope was the check)."""
    return request.user if getattr(request.user, "pk", None) is not None else None


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
        return keyset_response(request, _deliveries_keyset, qs, DeliverySerializer)


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
