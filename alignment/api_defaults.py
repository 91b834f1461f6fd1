"""The REST framework's defaults for every list and OPTIONS answer (settings.REST_FRAMEWORK names
them). Imported by DRF while it starts, so this module imports nothing of the app's views."""

from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import LimitOffsetPagination


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pages, but a `limit` or `offset` that is not a whole number is a 400
    with the field (DRF would silently serve the first page)."""

    def _whole(self, request, name: str, *, least: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < least:
            raise exceptions.ValidationError({name: [f"A whole number from {least}."]})
        return value

    def get_limit(self, request):
        limit = self._whole(request, self.limit_query_param, least=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit) if self.max_limit else limit

    def get_offset(self, request):
        return self._whole(request, self.offset_query_param, least=0) or 0


class ApiMetadata(SimpleMetadata):
    """OPTIONS answers: a view without a serializer of its own (an action endpoint such as
    `.../send-back/`) describes no fields instead of failing."""

    def determine_actions(self, request, view):
        getter = getattr(type(view), "get_serializer_class", None)
        has_own = getattr(view, "serializer_class", None) is not None or (
            getter is not None and getter.__qualname__ != "GenericAPIView.get_serializer_class"
        )
        return super().determine_actions(request, view) if has_own else {}
