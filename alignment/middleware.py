from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from alignment.lib.timezones import zone_or_none


class WorkingTimezoneMiddleware:
    """Every request runs in the signed-in person's working time zone, so the times they type are
    read and the times they see are shown in it; anonymous visitors, and a person whose zone this
    machine does not know, get the company's settings.TIME_ZONE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = None
        if user is not None and user.is_authenticated:
            zone = zone_or_none(getattr(user, "working_timezone", ""))
        # override(None) is the company zone; leaving the block restores whatever was active, so a
        # zone never leaks into the next request served by this thread
        with timezone.override(zone):
            return self.get_response(request)
