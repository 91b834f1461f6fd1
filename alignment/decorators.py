from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from alignment.permissions import Action, can


def team_member_required(view):
    """Every page is for both teams; a logged-in person on neither team sees a 403."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can(request.user, Action.VIEW):
            raise PermissionDenied("Your account has no team role yet: ask an admin to set one.")
        return view(request, *args, **kwargs)

    return wrapper
