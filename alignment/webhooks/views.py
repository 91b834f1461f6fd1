"""Admin pages for webhooks: the endpoints, a form to create or change one, and each endpoint's
delivery log with resend and test buttons. Every page is for admins only (403 otherwise)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError

from alignment.lib.errors import DomainError
from alignment.permissions import Action, can
from alignment.webhooks.forms import WebhookEndpointForm
from alignment.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from alignment.webhooks.services import (
    delivery_resend,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_update,
)
from leads.api.pagination import Keyset

LOG_PAGE_SIZE = 50
# attempts shown under each delivery of the log (the API has them all)
ATTEMPTS_SHOWN = 10
_log_keyset = Keyset("-id")


def _require_admin(request) -> None:
    if not can(request.user, Action.WEBHOOKS_MANAGE):
        raise PermissionDenied("Only an admin manages webhooks.")


def _form_error(form, error: DomainError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


@login_required
def endpoints_page(request):
    _require_admin(request)
    return render(
        request, "webhooks/list.html", {"endpoints": WebhookEndpoint.objects.order_by("id")}
    )


@login_required
def endpoint_create_view(request):
    _require_admin(request)
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = endpoint_create(**form.cleaned_data, by=request.user)
        except DomainError as e:
            _form_error(form, e)
        else:
            return render(
                request,
                "webhooks/secret.html",
                {"endpoint": endpoint, "secret": secret, "created": True},
            )
    return render(request, "webhooks/form.html", {"form": form, "endpoint": None})


@login_required
def endpoint_edit_view(request, pk: int):
    _require_admin(request)
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "is_active": endpoint.is_active,
    }
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint_update(endpoint=endpoint, by=request.user, **form.cleaned_data)
        except DomainError as e:
            _form_error(form, e)
        else:
            messages.success(request, "Saved.")
            return redirect("webhooks:detail", pk=endpoint.pk)
    return render(request, "webhooks/form.html", {"form": form, "endpoint": endpoint})


@login_required
def endpoint_page(request, pk: int):
    """The endpoint and its delivery log, newest first, a page at a time (three queries)."""
    _require_admin(request)
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    status = request.GET.get("status", "")
    qs = WebhookDelivery.objects.filter(endpoint=endpoint).prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("-id"))
    )
    if status in DeliveryStatus.values:
        qs = qs.filter(status=status)
    else:
        status = ""
    try:
        rows, cursor = _log_keyset.page(qs, cursor=request.GET.get("cursor"), size=LOG_PAGE_SIZE)
    except ValidationError:
        rows, cursor = _log_keyset.page(qs, cursor=None, size=LOG_PAGE_SIZE)
    for row in rows:
        row.shown_attempts = list(row.attempt_log.all())[:ATTEMPTS_SHOWN]
    return render(
        request,
        "webhooks/detail.html",
        {
            "endpoint": endpoint,
            "deliveries": rows,
            "next_cursor": cursor,
            "status": status,
            "statuses": DeliveryStatus.choices,
        },
    )


@login_required
@require_POST
def endpoint_test_view(request, pk: int):
    _require_admin(request)
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    endpoint_send_test(endpoint=endpoint, by=request.user)
    messages.success(request, "Test message queued; its outcome shows in the log below.")
    return redirect("webhooks:detail", pk=endpoint.pk)


@login_required
@require_POST
def endpoint_rotate_view(request, pk: int):
    _require_admin(request)
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    endpoint, secret = endpoint_rotate_secret(endpoint=endpoint, by=request.user)
    return render(
        request, "webhooks/secret.html", {"endpoint": endpoint, "secret": secret, "created": False}
    )


@login_required
def endpoint_delete_view(request, pk: int):
    _require_admin(request)
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if request.method == "POST":
        endpoint_delete(endpoint=endpoint, by=request.user)
        messages.success(request, f"Deleted the endpoint {endpoint.url}.")
        return redirect("webhooks:list")
    return render(request, "webhooks/delete.html", {"endpoint": endpoint})


@login_required
@require_POST
def delivery_resend_view(request, pk: int, delivery_id: int):
    _require_admin(request)
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_id, endpoint_id=pk)
    try:
        delivery_resend(delivery=delivery, by=request.user)
    except DomainError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, f"Resending {delivery.msg_id}.")
    return redirect("webhooks:detail", pk=pk)
