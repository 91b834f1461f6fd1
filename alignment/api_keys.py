"""API keys: created once (the plain key is shown only then), stored as a SHA-256, revocable."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import API_SCOPES, ApiKey, User
from alignment.permissions import Action, require

PREFIX_LENGTH = 8
# last_used_at is written at most this often per key, so a busy key costs no write per request
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _validate_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise DomainError("Give the key at least one scope.", field="scopes")
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown:
        raise DomainError(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(API_SCOPES)}.",
            field="scopes",
        )
    return [s for s in API_SCOPES if s in set(scopes)]


@transaction.atomic
def api_key_create(
    *, name: str, scopes: list[str], as_user: User | None = None, by: User | None = None
) -> tuple[ApiKey, str]:
    """Returns the key and its plain text, which is never stored and cannot be shown again."""
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the key a name.", field="name")
    if len(name) > 100:
        raise DomainError("A key's name has at most 100 characters.", field="name")
    scopes = _validate_scopes(list(scopes))
    if as_user is not None and not as_user.is_active:
        raise DomainError(f"{as_user.username} is not active.", field="as_user")
    if by is not None:
        require(by, Action.API_KEY_MANAGE)
    while True:
        raw = secrets.token_urlsafe(32)
        prefix = raw[:PREFIX_LENGTH]
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        hashed_key=_hash(raw),
        scopes=scopes,
        as_user=as_user,
        created_by=by,
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, key: ApiKey, by: User | None) -> ApiKey:
    if by is not None:
        require(by, Action.API_KEY_MANAGE)
    ApiKey.objects.filter(id=key.id, revoked_at=None).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])
    return key


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key this plain text belongs to, or None; compares hashes in constant time."""
    raw = (raw or "").strip()
    if len(raw) <= PREFIX_LENGTH:
        return None
    key = (
        ApiKey.objects.select_related("as_user")
        .filter(prefix=raw[:PREFIX_LENGTH], revoked_at=None)
        .first()
    )
    if key is None or not hmac.compare_digest(key.hashed_key, _hash(raw)):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        # conditional: of concurrent requests only one writes
        stale = Q(last_used_at=None) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ApiKey.objects.filter(stale, id=key.id).update(last_used_at=now)
        key.last_used_at = now
    return key
