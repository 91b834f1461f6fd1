from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from alignment.models import Notification
from alignment.notifications import (
    notification_read,
    notifications_for,
    notifications_read_all,
)

NOTIFICATIONS_PAGE_SIZE = 50


@login_required
def home(request):
    return redirect("leads:list")


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
