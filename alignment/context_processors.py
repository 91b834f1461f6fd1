"""Values every page's header needs, for the signed-in person only."""

from functools import partial

from django.http import HttpRequest

from alignment.notifications import notifications_unread_count


def notifications(request: HttpRequest) -> dict:
    """The bell's unread count, as a callable: a template calls it when it shows the bell
    (`{% with unread=notifications_unread %}`: one COUNT), so pages that do not (the admin, the
    emails) pay nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"notifications_unread": partial(notifications_unread_count, user=user)}
