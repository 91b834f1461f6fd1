"""What the API's read endpoints share: times with an offset, reads for team members only, and
how a sign-off's approval reads."""

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView

from alignment.api import api_can
from alignment.permissions import Action


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset; a time without one is refused rather than guessed."""

    default_error_messages = {
        "naive": "Give the time with its offset (2026-11-18T09:00:00+01:00 or ...Z).",
    }

    def to_internal_value(self, value):
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None and timezone.is_naive(parsed):
            self.fail("naive")
        return super().to_internal_value(value)


def require_team_member(request) -> None:
    """Reading is for team members: a session or a key acting as someone without a team role
    is refused; a key of its own is held to its scopes only."""
    if not api_can(request, Action.VIEW):
        raise exceptions.PermissionDenied("Your role may not read this; ask an admin for a role.")


class SignOffApprovalSerializer(serializers.Serializer):
    """One manager's approval of a signed version (a scoring model, an agreement)."""

    by = serializers.CharField(source="by.username")
    role = serializers.CharField(help_text="marketing_manager or sales_manager")
    note = serializers.CharField()
    at = serializers.DateTimeField()


class TeamReadView(GenericAPIView):
    """A read endpoint: the view's `required_scopes` for a key, a team role for a person."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require_team_member(request)


class TextOnlyField(serializers.CharField):
    """Text, and only text: a number or a list is refused, not turned into a string."""

    default_error_messages = {"not_text": "Write it as text."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)
