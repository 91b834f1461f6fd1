"""Reassigning a lead through the API: a sales manager's (or an admin's) decision, through the
routing service's manual assignment, as on the lead page."""

from django.db import transaction
from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.api import PROBLEM_EXAMPLES
from alignment.idempotency import idempotent
from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import User
from leads.api.leads import api_actor
from leads.api.pipeline.moves import lead_for
from leads.api.serializers import LeadSerializer
from leads.routing import lead_assign


class AssignmentRequestSerializer(serializers.Serializer):
    owner = serializers.CharField(
        max_length=150, help_text="The new owner: a user id or a username (a sales rep/manager)."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)

    def validate_owner(self, value: str) -> User:
        value = value.strip()
        user = None
        if value.isdigit() and int(value) < 2**63:
            user = User.objects.filter(pk=int(value)).first()
        user = user or User.objects.filter(username=value).first()
        if user is None:
            raise serializers.ValidationError(f"No user with id or username “{value}”.")
        return user

    def to_internal_value(self, data):
        # a user id may come as a JSON number
        if isinstance(data, dict) and isinstance(data.get("owner"), int):
            data = {**data, "owner": str(data["owner"])}
        return super().to_internal_value(data)


class AssignmentResultSerializer(serializers.Serializer):
    lead = LeadSerializer()
    assignment = serializers.DictField(
        help_text="id, owner (username), previous_owner (username or null), by, note, at."
    )


class LeadAssignmentView(APIView):
    """Reassign a lead by hand (a sales manager or an admin), as the lead page does."""

    required_scopes = ("pipeline:write",)

    @extend_schema(
        summary="Reassign a lead",
        description="Gives the lead to another sales rep or sales manager through the routing "
        "service's manual assignment: a sales manager's or an admin's decision (the rep's "
        "capacity is not checked), so the key must act as one (a key acting as nobody gets "
        "403). Writes the Assignment row and a `lead.assigned` event. Assigning to the "
        "current owner, or to someone outside sales, is a 400.\n\nScope: `pipeline:write`.",
        request=AssignmentRequestSerializer,
        responses={200: AssignmentResultSerializer},
        examples=[
            OpenApiExample(
                "Reassign", value={"owner": "rita", "note": "Covers DACH"}, request_only=True
            ),
            OpenApiExample(
                "Reassigned",
                value={
                    "lead": {"id": 42, "owner": {"id": 7, "username": "rita"}},
                    "assignment": {
                        "id": 88,
                        "owner": "rita",
                        "previous_owner": "sam",
                        "by": "sales_manager",
                        "note": "Covers DACH",
                        "at": "2026-12-01T10:15:00+00:00",
                    },
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
    )
    @idempotent
    def post(self, request, pk: int):
        body = AssignmentRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lead = lead_for(pk)
        by = api_actor(request)["by"]
        if by is None:
            raise PermissionDenied(
                "Reassigning a lead is a sales manager's decision: use a key created --as-user "
                "a sales manager or an admin."
            )
        try:
            with transaction.atomic():
                assignment = lead_assign(
                    lead=lead,
                    rep=body.validated_data["owner"],
                    by=by,
                    note=body.validated_data.get("note", ""),
                )
        except PermissionDenied:
            raise
        except DomainError as exc:
            # the service names the field `rep`; here it is `owner`
            field = "owner" if exc.field == "rep" else exc.field
            raise DomainError(exc.message, field=field) from None
        previous = assignment.previous_owner if assignment.previous_owner_id else None
        data = {
            "lead": lead_for(pk),
            "assignment": {
                "id": assignment.pk,
                "owner": assignment.rep.username,
                "previous_owner": previous.username if previous else None,
                "by": by.username,
                "note": assignment.note,
                "at": assignment.at.isoformat(),
            },
        }
        return Response(AssignmentResultSerializer(data).data)


urlpatterns = [
    path("leads/<int:pk>/assignment/", LeadAssignmentView.as_view(), name="api-lead-assignment"),
]
