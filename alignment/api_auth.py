"""Who is calling the API: a bearer API key (with scopes) or the dashboard's own session."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from alignment.api_keys import api_key_authenticate
from alignment.models import API_SCOPES, ApiKey


class ApiKeyUser:
    """request.user for a key that acts as nobody: authenticated, but with no team role."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False
    effective_role = ""
    role = ""
    pk = id = None

    def __init__(self, key: ApiKey):
        self.key = key
        self.username = f"api-key:{key.prefix}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer KEY`; request.auth is the ApiKey, request.user its acting user."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the key as 'Authorization: Bearer KEY', with no spaces in the key."
            )
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        key = api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is wrong or has been revoked.")
        user = key.user_for_permissions()
        if user is not None and not user.is_active:
            raise exceptions.AuthenticationFailed("The key's acting user is no longer active.")
        return (user or ApiKeyUser(key), key)

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py create_api_key` or the API keys page. "
            f"Scopes: {', '.join(API_SCOPES)}.",
        }


def request_api_key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def view_scopes(view, method: str) -> tuple[str, ...]:
    """The scopes a key needs for this view and method: `required_scopes` on the view (a tuple,
    or a dict by HTTP method) plus those of any HasScope permission it lists."""
    method = "GET" if method.upper() == "HEAD" else method.upper()
    needed = getattr(view, "required_scopes", ())
    if isinstance(needed, dict):
        needed = needed.get(method, ())
    scopes = list(needed)
    for permission in getattr(view, "permission_classes", ()):
        scopes += [s for s in getattr(permission, "scopes", ()) if s not in scopes]
    return tuple(scopes)


def _missing(request, scopes) -> list[str]:
    key = request_api_key(request)
    if key is None:  # a session: the person's role applies, in the services
        return []
    return [s for s in scopes if not key.has_scope(s)]


class ScopePermission(permissions.BasePermission):
    """A key needs every scope the view names in `required_scopes` (a tuple, or a dict by HTTP
    method: `{"GET": ("leads:read",), "POST": ("leads:write",)}`); a session needs none."""

    message = "This API key lacks a scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        needed = getattr(view, "required_scopes", ())
        if isinstance(needed, dict):
            method = "GET" if request.method == "HEAD" else request.method
            needed = needed.get(method, ())
        missing = _missing(request, needed)
        if missing:
            self.message = f"This API key lacks the scope(s): {', '.join(missing)}."
            return False
        return True


def HasScope(*scopes: str) -> type[permissions.BasePermission]:  # noqa: N802 (reads as a class)
    """`permission_classes = [IsAuthenticated, HasScope("leads:read")]`."""

    class _HasScope(permissions.BasePermission):
        message = "This API key lacks a scope this endpoint needs."

        def has_permission(self, request, view) -> bool:
            missing = _missing(request, scopes)
            if missing:
                self.message = f"This API key lacks the scope(s): {', '.join(missing)}."
                return False
            return True

    _HasScope.scopes = scopes
    _HasScope.__name__ = f"HasScope({', '.join(scopes)})"
    return _HasScope


class ApiKeyThrottle(throttling.SimpleRateThrottle):
    """One budget per key (or per signed-in person, or per address when anonymous)."""

    scope = "api"

    def get_rate(self) -> str:
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str:
        key = request_api_key(request)
        if key is not None:
            ident = f"key:{key.id}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
