"""`Idempotency-Key` on POST: a retried request gets the first answer instead of a second effect.

The first request with a key claims it (a row whose unique index makes a concurrent duplicate
wait and then see the claim), runs, and stores its answer; a retry within 24 hours with the same
body gets that answer back with `Idempotent-Replayed: true`; the same key with another body is a
422, and a retry while the first is still running a 409. A server error is not stored, so a
retry runs again.
"""

import functools
import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from alignment.api import PROBLEM_MEDIA_TYPE
from alignment.api_auth import request_api_key
from alignment.models import IdempotentRequest

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."
    default_code = "idempotency_in_progress"


class IdempotencyMismatch(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used with a different request body."
    default_code = "idempotency_key_reused"


def _caller(request) -> str:
    key = request_api_key(request)
    return f"key:{key.pk}" if key is not None else f"user:{request.user.pk}"


def _fingerprint(request) -> str:
    def default(value):
        # an uploaded file counts by its name, size and content
        if hasattr(value, "read") and hasattr(value, "seek"):
            digest = hashlib.sha256()
            for chunk in value.chunks():
                digest.update(chunk)
            value.seek(0)
            return f"file:{getattr(value, 'name', '')}:{digest.hexdigest()}"
        return str(value)

    data = request.data
    if hasattr(data, "lists"):  # a QueryDict (form or multipart)
        data = {k: v for k, v in data.lists()}
    body = json.dumps(data, sort_keys=True, default=default)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotentRequest) -> Response:
    headers = {"Idempotent-Replayed": "true"}
    if record.location:
        headers["Location"] = record.location
    # a replayed refusal is a problem, as the first answer was
    content_type = PROBLEM_MEDIA_TYPE if record.status_code >= 400 else None
    return Response(
        record.response, status=record.status_code, headers=headers, content_type=content_type
    )


def _claim(*, caller: str, key: str, request, fingerprint: str) -> IdempotentRequest | Response:
    cutoff = timezone.now() - KEEP_FOR
    IdempotentRequest.objects.filter(caller=caller, key=key, created_at__lt=cutoff).delete()
    try:
        with transaction.atomic():
            return IdempotentRequest.objects.create(
                caller=caller,
                key=key,
                method=request.method,
                path=request.path[:500],
                fingerprint=fingerprint,
            )
    except IntegrityError:
        pass
    record = IdempotentRequest.objects.filter(caller=caller, key=key).first()
    if record is None:  # pruned between the two statements: the caller may simply retry
        raise IdempotencyConflict()
    if record.fingerprint != fingerprint:
        raise IdempotencyMismatch()
    if record.status_code is None:
        raise IdempotencyConflict()
    return _replay(record)


def idempotent(handler):
    """Decorate an APIView's `post`: honours the `Idempotency-Key` header when one is sent."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return handler(view, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError(
                {HEADER: [f"An Idempotency-Key has at most {MAX_KEY_LENGTH} characters."]}
            )
        claimed = _claim(
            caller=_caller(request), key=key, request=request, fingerprint=_fingerprint(request)
        )
        if isinstance(claimed, Response):
            return claimed
        try:
            response = handler(view, request, *args, **kwargs)
        except Exception as exc:
            # a refusal is an answer too (the retry would be refused the same way); a server
            # error is not stored below, so its retry runs again
            response = view.handle_exception(exc)
        if response.status_code >= 500:
            claimed.delete()
            return response
        claimed.status_code = response.status_code
        claimed.response = response.data
        claimed.location = response.headers.get("Location", "")[:500]
        claimed.save(update_fields=["status_code", "response", "location"])
        return response

    # the schema documents the header and the 409/422 answers of every such handler
    wrapper.idempotent = True
    return wrapper


def idempotent_prune(*, now=None) -> int:
    """Forget answers older than 24 hours (a beat job calls it hourly)."""
    cutoff = (now or timezone.now()) - KEEP_FOR
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
