"""REST plumbing every app shares: every error is an RFC 9457 problem (application/problem+json),
domain errors become 400/403 with a readable message, and nothing under /api/ answers in HTML."""

import functools
import logging
import re
from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.urls import Resolver404, URLResolver, get_resolver, resolve
from django.views import defaults
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from alignment.api_auth import request_api_key, view_scopes
from alignment.lib.errors import DomainError, PermissionDenied
from alignment.permissions import Action, can

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemJSONRenderer(JSONRenderer):
    media_type = PROBLEM_MEDIA_TYPE


def problem(
    *, status_code: int, detail: str, instance: str, code: str = "", errors: dict | None = None
) -> dict:
    """The one error body: RFC 9457 fields, `code` (a stable word) and field `errors`."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if code:
        body["code"] = code
    if errors:
        body["errors"] = errors
    return body


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": [...], "items.3.email": [...]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for name, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return out
    if isinstance(detail, list) and any(isinstance(d, dict | list) for d in detail):
        out = {}
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return out
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(m) for m in messages]} if messages else {}


def _use_problem_renderer(request) -> None:
    # an error is JSON whatever the client asked for (a browser's text/html included)
    if request is not None:
        request.accepted_renderer = ProblemJSONRenderer()
        request.accepted_media_type = PROBLEM_MEDIA_TYPE


def exception_handler(exc, context):
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(exc.message)
    elif isinstance(exc, DomainError):
        _use_problem_renderer(request)
        errors = {exc.field: [exc.message]} if exc.field else None
        body = problem(
            status_code=400, detail=exc.message, instance=instance, code="invalid", errors=errors
        )
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    _use_problem_renderer(request)
    if response is None:
        # a bug, not the client's fault: logged with its traceback, answered without one
        logger.exception("Unhandled error in %s", instance, exc_info=exc)
        body = problem(
            status_code=500,
            detail="Something went wrong on our side; it has been logged.",
            instance=instance,
            code="server_error",
        )
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "The request has invalid fields." if errors else "The request is invalid."
        code = "invalid"
    else:
        errors = None
        detail = str(exc.detail) if isinstance(exc.detail, str) else "The request failed."
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else ""
    response.data = problem(
        status_code=response.status_code,
        detail=detail,
        instance=instance,
        code=code,
        errors=errors,
    )
    return response


def server_error(request, *args, **kwargs):
    """handler500: problem JSON under /api/, Django's own page elsewhere."""
    if request.path.startswith("/api/"):
        body = problem(
            status_code=500,
            detail="Something went wrong on our side; it has been logged.",
            instance=request.path,
            code="server_error",
        )
        return JsonResponse(body, status=500, content_type=PROBLEM_MEDIA_TYPE)
    return defaults.server_error(request, *args, **kwargs)


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem: every error the API answers has this shape.",
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Bad Request"},
        "status": {"type": "integer", "example": 400},
        "detail": {"type": "string", "example": "The request has invalid fields."},
        "instance": {"type": "string", "example": "/api/v1/leads/"},
        "code": {"type": "string", "example": "invalid"},
        "errors": {
            "type": "object",
            "description": "Field errors: the field's path (`items.3.email`) to its messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "example": {"email": ["Enter a valid email address."]},
        },
    },
    "required": ["type", "title", "status", "detail", "instance"],
}

_STANDARD_ERRORS = {
    "400": "Invalid input: `errors` names each field and what is wrong with it; nothing changed.",
    "401": "No API key, or a wrong or revoked one (`WWW-Authenticate: Bearer`).",
    "403": "The key lacks a scope this endpoint needs, or its acting user's role may not do it.",
    "404": "No such object (or not one the caller may see).",
    "429": "Too many requests for this key; `Retry-After` says how many seconds to wait.",
}


_IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Any unique string (a UUID) per logical request: a retry with the same key "
    "and body within 24 hours returns the first answer (with `Idempotent-Replayed: true`) and "
    "does nothing again.",
}
_IDEMPOTENCY_ERRORS = {
    "409": "A request with this Idempotency-Key is still being processed; retry later.",
    "422": "This Idempotency-Key was used with a different request body.",
}


def _document_idempotency(operation: dict) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == "Idempotency-Key" for p in parameters):
        parameters.append(_IDEMPOTENCY_HEADER)
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    responses = operation.setdefault("responses", {})
    for code, text in _IDEMPOTENCY_ERRORS.items():
        responses.setdefault(code, {"description": text, "content": content})


class ScopedAutoSchema(AutoSchema):
    """Each operation says which key scopes it needs: in its description, for people, and as
    `x-required-scopes`, for tools (and the test that tries every scope on every endpoint); an
    `@idempotent` POST documents its Idempotency-Key header and its 409 and 422 answers."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        scopes = list(view_scopes(self.view, method))
        operation["x-required-scopes"] = scopes
        if getattr(getattr(self.view, method.lower(), None), "idempotent", False):
            _document_idempotency(operation)
        needs = ", ".join(f"`{s}`" for s in scopes) if scopes else "any valid key"
        text = operation.get("description", "").rstrip()
        if "Scope" not in text:
            operation["description"] = f"{text}\n\n**Scope:** {needs}.".lstrip()
        return operation


def problem_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation documents the problem answers it can
    give (400 where it takes input, 404 where its path names an object, 401/403/429 always)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", PROBLEM_SCHEMA)
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            wanted = ["401", "403", "429"]
            if operation.get("parameters") or operation.get("requestBody"):
                wanted.append("400")
            if "{" in path:
                wanted.append("404")
            responses = operation.setdefault("responses", {})
            for code in sorted(wanted):
                responses.setdefault(
                    code, {"description": _STANDARD_ERRORS[code], "content": content}
                )
    return result


PROBLEM_EXAMPLES = [
    OpenApiExample(
        "Wrong or revoked key",
        value=problem(
            status_code=401,
            detail="The API key is wrong or has been revoked.",
            instance="/api/v1/me/",
            code="authentication_failed",
        ),
        response_only=True,
        status_codes=["401"],
    ),
]


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif (pattern.name or "").startswith("api-"):
            yield pattern.name, route


@functools.cache
def api_routes() -> list[tuple[str, str]]:
    """Every named endpoint under /api/v1/ as (name without "api-", "/api/v1/leads/{pk}/")."""
    found = []
    for name, route in _walk(get_resolver().url_patterns):
        if name in ("api-index", "api-schema", "api-docs") or not route.startswith("api/v1/"):
            continue
        found.append((name.removeprefix("api-"), "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)))
    return found


class ApiIndexView(APIView):
    """What the API offers: links to its schema, its docs and its endpoints."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary="API index",
        tags=["index"],
        responses=inline_serializer(
            "ApiIndex",
            {
                "schema": serializers.URLField(),
                "docs": serializers.URLField(),
                "endpoints": serializers.DictField(
                    child=serializers.CharField(),
                    help_text="Each endpoint's URL; a path parameter reads {name} (RFC 6570).",
                ),
            },
        ),
        examples=[
            OpenApiExample(
                "Index",
                value={
                    "schema": "https://pipeline.example.com/api/v1/schema/",
                    "docs": "https://pipeline.example.com/api/v1/docs/",
                    "endpoints": {"me": "https://pipeline.example.com/api/v1/me/"},
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        root = request.build_absolute_uri("/")
        return Response(
            {
                "schema": reverse("api-schema", request=request),
                "docs": reverse("api-docs", request=request),
                # the {name} placeholders stay readable (build_absolute_uri would encode them)
                "endpoints": {name: f"{root}{route[1:]}" for name, route in api_routes()},
            }
        )


class _ActingUserSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()


class _KeySerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())


class MeSerializer(serializers.Serializer):
    authentication = serializers.ChoiceField(choices=["api_key", "session"])
    key = _KeySerializer(allow_null=True, help_text="The key used; null with a session.")
    user = _ActingUserSerializer(
        allow_null=True, help_text="Whose role limits the caller; null for a key of its own."
    )
    actions = serializers.ListField(
        child=serializers.CharField(), help_text="What the caller's role allows."
    )


def api_can(request, action: Action) -> bool:
    """A session or a key acting as a person is held to that person's role; a key of its own
    only to its scopes, except sign-offs, which need a manager in person (an acting user)."""
    key = request_api_key(request)
    if key is not None and key.user_for_permissions() is None:
        return action not in (Action.SCORING_APPROVE, Action.AGREEMENT_SIGN)
    return can(request.user, action)


class MeView(APIView):
    """Who the API takes the caller to be; any valid key or a signed-in session."""

    @extend_schema(
        summary="The calling key or session",
        responses={200: MeSerializer},
        examples=[
            OpenApiExample(
                "A key acting as a sales rep",
                value={
                    "authentication": "api_key",
                    "key": {"name": "HubSpot sync", "prefix": "Xq3v9LkA", "scopes": ["leads:read"]},
                    "user": {"username": "rita", "role": "sales_rep"},
                    "actions": ["view", "lead.create", "lead.edit"],
                },
                response_only=True,
            ),
            *PROBLEM_EXAMPLES,
        ],
    )
    def get(self, request):
        key = request_api_key(request)
        user = key.user_for_permissions() if key is not None else request.user
        data = {
            "authentication": "api_key" if key is not None else "session",
            "key": (
                {"name": key.name, "prefix": key.prefix, "scopes": key.scopes}
                if key is not None
                else None
            ),
            "user": ({"username": user.username, "role": user.effective_role} if user else None),
            "actions": [a.value for a in Action if api_can(request, a)],
        }
        return Response(MeSerializer(data).data)


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """Every unknown URL under /api/v1/ answers a 404 problem, never Django's HTML page."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    def initial(self, request, *args, **kwargs):
        detail = "There is no such endpoint; GET /api/v1/ lists them."
        # this catch-all answers before APPEND_SLASH could redirect, so say what was meant
        if not request.path.endswith("/"):
            try:
                match = resolve(request.path + "/")
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not NotFoundView:
                detail = f"There is no such endpoint; did you mean {request.path}/ ?"
        raise exceptions.NotFound(detail)
