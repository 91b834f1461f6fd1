"""Content requests: sales (anyone on either team) asks for content that does not exist yet, the
team votes and discusses it, and marketing marks it planned, done (linking the new asset) or
declined (saying why), or opens it again. The only way a request, its votes and its comments are
written.

- a vote is one per person: the unique (request, user) row decides, and `vote_count` is recounted
  under the request's row lock, so two people voting at once both count;
- votes are for open and planned requests; a done or declined one takes none (its votes stay);
- every status change is a `content_request.updated` event (no lead), and planned, done and
  declined notify the requester and the voters (not the person who decided); a new request is a
  `content_request.created` event and notifies the marketing managers.
"""

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.notifications import notify
from alignment.permissions import Action, require
from content.models import (
    Asset,
    ContentRequest,
    ContentRequestComment,
    ContentRequestVote,
    FunnelStage,
    RequestStatus,
)
from leads.events import event_record
from leads.models import EventType

TITLE_MAX = ContentRequest._meta.get_field("title").max_length
TAG_MAX = ContentRequest._meta.get_field("persona").max_length
DETAILS_MAX = 4000
COMMENT_MAX = 4000
NOTE_MAX = 2000
# the requests that still take votes
VOTABLE = (RequestStatus.OPEN, RequestStatus.PLANNED)
NOTIFIED = {
    RequestStatus.PLANNED: "is planned",
    RequestStatus.DONE: "is done",
    RequestStatus.DECLINED: "was declined",
}


def request_url(request: ContentRequest) -> str:
    return reverse("content:request", args=[request.pk])


def _text(value, *, field: str, limit: int, required: str = "") -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DomainError("Write it as text.", field=field)
    value = value.strip()
    if required and not value:
        raise DomainError(required, field=field)
    if len(value) > limit:
        raise DomainError(f"At most {limit:,} characters, please.", field=field)
    return value


def _locked(request: ContentRequest) -> ContentRequest:
    return ContentRequest.objects.select_for_update().get(pk=request.pk)


def _refresh(target: ContentRequest, source: ContentRequest) -> ContentRequest:
    for field in ("status", "status_note", "decided_by_id", "asset_id", "vote_count", "updated_at"):
        setattr(target, field, getattr(source, field))
    return target


def content_request_create(
    *,
    by: User,
    title,
    details="",
    funnel_stage="",
    persona="",
    industry="",
) -> ContentRequest:
    require(by, Action.CONTENT_REQUEST)
    clean = {
        "title": _text(
            title, field="title", limit=TITLE_MAX, required="Say what content you need."
        ),
        "details": _text(details, field="details", limit=DETAILS_MAX),
        "persona": _text(persona, field="persona", limit=TAG_MAX),
        "industry": _text(industry, field="industry", limit=TAG_MAX),
    }
    stage = funnel_stage or ""
    if stage not in ("", *FunnelStage.values):
        raise DomainError(
            f"The funnel stage is one of: {', '.join(FunnelStage.values)} (or none).",
            field="funnel_stage",
        )
    now = timezone.now()
    with transaction.atomic():
        made = ContentRequest.objects.create(
            **clean, funnel_stage=stage, requested_by=by, created_at=now, updated_at=now
        )
        event_record(
            type=EventType.CONTENT_REQUESTED,
            lead=None,
            by=by,
            payload={"request_id": made.pk, "title": made.title},
        )
        managers = User.objects.filter(is_active=True, role=Role.MARKETING_MANAGER).exclude(
            pk=by.pk
        )
        for manager in managers:
            notify(
                user=manager,
                kind="content_request",
                key=f"content_request.created:{made.pk}:user:{manager.pk}",
                title=f"Content requested: {made.title}",
                body=f"{by.get_full_name() or by.username} asked for content"
                + (f": {made.details[:300]}" if made.details else "."),
                url=request_url(made),
            )
    return made


def content_request_vote(*, request: ContentRequest, by: User) -> bool:
    """Vote for it; False when this person had already voted (nothing changes)."""
    require(by, Action.CONTENT_REQUEST)
    with transaction.atomic():
        locked = _locked(request)
        if locked.status not in VOTABLE:
            raise DomainError(
                f"This request is {locked.get_status_display().lower()}: votes are for open and "
                "planned requests."
            )
        try:
            with transaction.atomic():
                ContentRequestVote.objects.create(request=locked, user=by)
        except IntegrityError:
            return False
        locked.vote_count = ContentRequestVote.objects.filter(request=locked).count()
        locked.save(update_fields=["vote_count"])
    _refresh(request, locked)
    return True


def content_request_unvote(*, request: ContentRequest, by: User) -> bool:
    """Take one's vote back; False when there was none."""
    require(by, Action.CONTENT_REQUEST)
    with transaction.atomic():
        locked = _locked(request)
        deleted, _ = ContentRequestVote.objects.filter(request=locked, user=by).delete()
        if deleted:
            locked.vote_count = ContentRequestVote.objects.filter(request=locked).count()
            locked.save(update_fields=["vote_count"])
    _refresh(request, locked)
    return bool(deleted)


def content_request_comment(*, request: ContentRequest, by: User, body) -> ContentRequestComment:
    require(by, Action.CONTENT_REQUEST)
    text = _text(body, field="body", limit=COMMENT_MAX, required="Write your comment first.")
    with transaction.atomic():
        locked = _locked(request)
        comment = ContentRequestComment.objects.create(request=locked, author=by, body=text)
        ContentRequest.objects.filter(pk=locked.pk).update(updated_at=comment.created_at)
    return comment


def content_request_update(
    *, request: ContentRequest, by: User, status, note="", asset: Asset | None = None
) -> ContentRequest:
    """Marketing's decision: planned, done (with the asset that answers it), declined (with a
    note saying why) or open again. The note replaces the last one; an asset is kept only on a
    done request."""
    require(by, Action.CONTENT_MANAGE)
    if status not in RequestStatus.values:
        raise DomainError(
            f"The status is one of: {', '.join(RequestStatus.values)}.", field="status"
        )
    note = _text(note, field="note", limit=NOTE_MAX)
    if status == RequestStatus.DONE and asset is None:
        raise DomainError("Link the asset that answers the request to mark it done.", field="asset")
    if status == RequestStatus.DECLINED and not note:
        raise DomainError("Say why it is declined: the requester will read it.", field="note")
    if asset is not None and status != RequestStatus.DONE:
        raise DomainError("Only a done request links its asset.", field="asset")
    with transaction.atomic():
        locked = _locked(request)
        same_asset = locked.asset_id == (asset.pk if asset is not None else None)
        if locked.status == status and locked.status_note == note and same_asset:
            return _refresh(request, locked)
        locked.status = status
        locked.status_note = note
        locked.asset = asset
        locked.decided_by = by
        locked.updated_at = timezone.now()
        locked.save(update_fields=["status", "status_note", "asset", "decided_by", "updated_at"])
        event = event_record(
            type=EventType.CONTENT_REQUEST_UPDATED,
            lead=None,
            by=by,
            payload={"request_id": locked.pk, "status": status, "asset_id": locked.asset_id},
        )
        if status in NOTIFIED:
            _notify_followers(locked, by=by, event_id=event.pk)
    return _refresh(request, locked)


def _notify_followers(request: ContentRequest, *, by: User, event_id: int) -> None:
    """The requester and every voter, once each, not the person who decided."""
    voters = ContentRequestVote.objects.filter(request=request).values("user_id")
    people = User.objects.filter(is_active=True).filter(pk__in=voters)
    if request.requested_by_id:
        people = people | User.objects.filter(is_active=True, pk=request.requested_by_id)
    body = request.status_note or {
        RequestStatus.PLANNED: "Marketing has planned it.",
        RequestStatus.DONE: "The new content is in the library.",
    }.get(request.status, "")
    if request.status == RequestStatus.DONE and request.asset is not None:
        body = f"{body} Asset: {request.asset.title}.".strip()
    for person in people.exclude(pk=by.pk).distinct():
        notify(
            user=person,
            kind="content_request",
            key=f"content_request.updated:{event_id}:user:{person.pk}",
            title=f"Content request {NOTIFIED[request.status]}: {request.title}",
            body=body,
            url=request_url(request),
        )
