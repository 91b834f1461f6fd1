"""Writing the content library: the only way an Asset is created or changed. Marketing (and an
admin) manage assets; everyone on either team reads them. An upload is checked before anything is
stored: at most settings.CONTENT_MAX_UPLOAD_BYTES, and one of the kinds in FILE_TYPES, judged by
its first bytes as well as its name (a program renamed to .pdf is refused)."""

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from content.models import Asset, AssetKind, FunnelStage
from leads.events import event_record
from leads.models import Campaign, EventType


@dataclass(frozen=True, slots=True)
class FileType:
    content_type: str
    extensions: tuple[str, ...]
    label: str

    def matches(self, head: bytes) -> bool:
        if self.content_type == "application/pdf":
            return head.startswith(b"%PDF-")
        if self.content_type == "image/png":
            return head.startswith(b"\x89PNG\r\n\x1a\n")
        if self.content_type == "image/jpeg":
            return head.startswith(b"\xff\xd8\xff")
        if self.content_type == "video/mp4":
            return head[4:8] == b"ftyp"
        # the Office formats are zip archives
        return head.startswith(b"PK\x03\x04")


_OFFICE = "application/vnd.openxmlformats-officedocument"
FILE_TYPES = (
    FileType("application/pdf", (".pdf",), "PDF"),
    FileType(f"{_OFFICE}.presentationml.presentation", (".pptx",), "PowerPoint"),
    FileType(f"{_OFFICE}.wordprocessingml.document", (".docx",), "Word"),
    FileType(f"{_OFFICE}.spreadsheetml.sheet", (".xlsx",), "Excel"),
    FileType("image/png", (".png",), "PNG"),
    FileType("image/jpeg", (".jpg", ".jpeg"), "JPEG"),
    FileType("video/mp4", (".mp4",), "MP4"),
)
ALLOWED = ", ".join(t.label for t in FILE_TYPES)


def _size(size: int) -> str:
    """A file size as a person reads it: 25 MB, 1.5 MB, 2 KB."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(size / 1_000))} KB"


def file_type_of(upload: UploadedFile) -> FileType:
    """The upload's type, or a DomainError saying what is allowed."""
    limit = settings.CONTENT_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise DomainError(
            f"The file is {_size(upload.size)}; the library takes files up to "
            f"{_size(limit)}. Link a larger one (a video on your video host) instead.",
            field="file",
        )
    extension = PurePath(upload.name or "").suffix.lower()
    wanted = next((t for t in FILE_TYPES if extension in t.extensions), None)
    if wanted is None:
        raise DomainError(
            f"Files of type {extension or '(no extension)'} cannot be uploaded. Allowed: {ALLOWED}.",
            field="file",
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not wanted.matches(head):
        raise DomainError(
            f"The file is named {extension} but its content is not a {wanted.label} file.",
            field="file",
        )
    return wanted


def _tags(value: Any, field: str) -> list[str]:
    if value in (None, ""):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise DomainError(f"{field.capitalize()} are a list of words.", field=field)
    return sorted({i.strip().casefold() for i in items if i.strip()})


ASSET_FIELDS = (
    "title",
    "kind",
    "funnel_stage",
    "personas",
    "industries",
    "url",
    "campaign",
    "sales_ready",
)


def _clean(data: dict[str, Any], *, current: Asset | None) -> dict[str, Any]:
    unknown = sorted(set(data) - set(ASSET_FIELDS))
    if unknown:
        raise DomainError(f"Unknown field {unknown[0]!r}.", field=unknown[0])
    clean: dict[str, Any] = {}
    if "title" in data or current is None:
        title = str(data.get("title") or "").strip()
        if not title:
            raise DomainError("Give the asset a title.", field="title")
        clean["title"] = title[:200]
    for field, choices, what in (
        (
            "kind",
            AssetKind,
            "a case study, one-pager, deck, video, blog post, webinar recording or template",
        ),
        ("funnel_stage", FunnelStage, "awareness, consideration or decision"),
    ):
        if field in data or current is None:
            value = data.get(field)
            if value not in choices.values:
                raise DomainError(f"Pick {what}.", field=field)
            clean[field] = value
    for field in ("personas", "industries"):
        if field in data:
            clean[field] = _tags(data[field], field)
    if "url" in data:
        url = str(data["url"] or "").strip()
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                raise DomainError(
                    "Give a web address starting with https://.", field="url"
                ) from None
        clean["url"] = url
    if "campaign" in data:
        campaign = data["campaign"]
        if campaign not in (None, "") and not isinstance(campaign, Campaign):
            campaign = Campaign.objects.filter(pk=campaign).first()
            if campaign is None:
                raise DomainError("There is no such campaign.", field="campaign")
        clean["campaign"] = campaign or None
    if "sales_ready" in data:
        clean["sales_ready"] = bool(data["sales_ready"])
    return clean


def _attach(asset: Asset, upload: UploadedFile | None) -> None:
    if upload is None:
        return
    kind = file_type_of(upload)
    asset.file.save(PurePath(upload.name).name, upload, save=False)
    asset.file_name = PurePath(upload.name).name[:255]
    asset.content_type = kind.content_type
    asset.file_size = upload.size


def _one_of(asset: Asset) -> None:
    if bool(asset.url) == bool(asset.file):
        raise DomainError(
            "Give either a web address or a file to upload, not both and not neither.",
            field="url",
        )


def asset_create(*, by: User, data: dict[str, Any], upload: UploadedFile | None = None) -> Asset:
    """A new asset owned by `by` (marketing or an admin)."""
    require(by, Action.CONTENT_MANAGE)
    clean = _clean(data, current=None)
    if upload is not None:
        file_type_of(upload)  # refuse before anything is stored
    asset = Asset(owner=by, **clean)
    if upload is None:
        _one_of(asset)
    elif asset.url:
        raise DomainError(
            "Give either a web address or a file to upload, not both and not neither.",
            field="url",
        )
    with transaction.atomic():
        _attach(asset, upload)
        asset.save()
        event_record(
            type=EventType.ASSET_CREATED,
            lead=None,
            by=by,
            payload={
                "asset_id": asset.pk,
                "title": asset.title,
                "kind": asset.kind,
                "funnel_stage": asset.funnel_stage,
            },
        )
    return asset


# what asset.updated names as changed: the fields of ASSET_FIELDS, and "file" for a new upload
_COMPARED = (*(f for f in ASSET_FIELDS if f != "campaign"), "campaign_id", "file")


def _state(asset: Asset) -> dict[str, Any]:
    return {
        name.removesuffix("_id"): (asset.file.name if name == "file" else getattr(asset, name))
        for name in _COMPARED
    }


def asset_update(
    *, asset: Asset, by: User, data: dict[str, Any], upload: UploadedFile | None = None
) -> Asset:
    """Change an asset; a new upload replaces the file (and clears the link), a link the file."""
    require(by, Action.CONTENT_MANAGE)
    clean = _clean(data, current=asset)
    if upload is not None:
        file_type_of(upload)
        if clean.get("url"):
            raise DomainError(
                "Give either a web address or a file to upload, not both and not neither.",
                field="url",
            )
    with transaction.atomic():
        locked = Asset.objects.select_for_update().get(pk=asset.pk)
        before = _state(locked)
        old_file = locked.file.name if locked.file else ""
        for field, value in clean.items():
            setattr(locked, field, value)
        if upload is not None:
            locked.url = ""
            _attach(locked, upload)
        elif clean.get("url"):
            locked.file, locked.file_name, locked.content_type, locked.file_size = "", "", "", None
        _one_of(locked)
        locked.updated_at = timezone.now()
        locked.save()
        after = _state(locked)
        event_record(
            type=EventType.ASSET_UPDATED,
            lead=None,
            by=by,
            payload={
                "asset_id": locked.pk,
                "title": locked.title,
                "changed": [name for name in after if after[name] != before[name]],
            },
        )
        replaced = old_file and old_file != (locked.file.name if locked.file else "")
        if replaced:
            storage, name = locked.file.storage, old_file
            transaction.on_commit(lambda: storage.delete(name))
    return locked
