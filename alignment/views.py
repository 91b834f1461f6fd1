from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from alignment.api_keys import api_key_create, api_key_revoke
from alignment.forms import ApiKeyForm
from alignment.lib.errors import DomainError
from alignment.models import ApiKey, Notification
from alignment.notifications import (
    notification_read,
    notifications_for,
    notifications_read_all,
)
from alignment.permissions import Action, can

NOTIFICATIONS_PAGE_SIZE = 50


def _page_number(request) -> int:
    try:
        return max(1, int(request.GET.get("page", 1)))
    except ValueError:
        return 1


@login_required
def notifications_page(request):
    """The signed-in person's own notifications, newest first; everyone has this page."""
    unread_only = request.GET.get("unread") == "1"
    number = _page_number(request)
    start = (number - 1) * NOTIFICATIONS_PAGE_SIZE
    # one row more than a page tells whether there is a next page, without a COUNT(*)
    rows = list(
        notifications_for(user=request.user, unread_only=unread_only)[
            start : start + NOTIFICATIONS_PAGE_SIZE + 1
        ]
    )
    return render(
        request,
        "alignment/notifications.html",
        {
            "items": rows[:NOTIFICATIONS_PAGE_SIZE],
            "page_number": number,
            "has_next": len(rows) > NOTIFICATIONS_PAGE_SIZE,
            "unread_only": unread_only,
        },
    )


@login_required
@require_POST
def notification_open(request, pk: int):
    """Mark one notification read and go to what it is about (back to the list if it links
    nowhere)."""
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    notification_read(notification=notification)
    target = notification.url
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("notifications")


@login_required
@require_POST
def notifications_read_all_view(request):
    notifications_read_all(user=request.user)
    return redirect("notifications")


def _require_key_manager(request) -> None:
    if not can(request.user, Action.API_KEY_MANAGE):
        raise PermissionDenied("Only an admin manages API keys.")


@login_required
def api_keys_page(request):
    """Admins list, create and revoke API keys; a new key's plain text is shown once, here."""
    _require_key_manager(request)
    created_key = None
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key, created_key = api_key_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                as_user=form.cleaned_data["as_user"],
                by=request.user,
            )
        except DomainError as e:
            form.add_error(e.field if e.field in form.fields else None, e.message)
        else:
            form = ApiKeyForm()
    keys = ApiKey.objects.select_related("as_user", "created_by")
    return render(
        request,
        "alignment/api_keys.html",
        {"keys": keys, "form": form, "created_key": created_key},
    )


@login_required
def api_key_revoke_view(request, pk: int):
    _require_key_manager(request)
    key = get_object_or_404(ApiKey, pk=pk)
    if request.method == "POST":
        api_key_revoke(key=key, by=request.user)
        messages.success(request, f"Revoked {key.name} ({key.prefix}…).")
        return redirect("api_keys")
    return render(request, "alignment/api_key_revoke.html", {"key": key})
