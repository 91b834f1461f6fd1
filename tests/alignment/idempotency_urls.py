"""A test-only endpoint with a visible effect (a heartbeat row per call) behind @idempotent."""

from django.urls import path
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment.idempotency import idempotent
from alignment.models import WorkerHeartbeat

CALLS: list[str] = []


class _Body(serializers.Serializer):
    name = serializers.CharField(max_length=50)


class CountingView(APIView):
    required_scopes = ("leads:write",)

    @idempotent
    def post(self, request):
        body = _Body(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["name"]
        CALLS.append(name)
        if name == "boom":
            raise RuntimeError("a bug")
        # the heartbeat name is unique: one row per call, named after the call
        row = WorkerHeartbeat.objects.create(name=f"{name}#{len(CALLS)}", beat_at=timezone.now())
        return Response(
            {"id": row.pk, "name": name},
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/things/{row.pk}/"},
        )


urlpatterns = [path("things/", CountingView.as_view())]
