"""Sales using the library: a rep shares an asset with a lead (one click: a `content_shared`
touchpoint, its AssetUse and a content.shared event, in one transaction), and a lead's content
download that names an asset is linked to it after commit (an "engaged" AssetUse and a
content.engaged event), by the outbox reaction `asset_engaged_reaction`.

Decisions worth knowing:
- Sharing the same asset with the same lead twice is two shares (two touchpoints, two uses): a
  rep may well send it again after a meeting, and the KPIs count shares, not pairs.
- An asset must be sales ready to be shared; the check is made under the asset's row lock, so
  an asset marketing withdraws at that moment is not shared.
- A download names its asset by `metadata.asset_id`, or by `metadata.asset_url` / `metadata.url`
  equal to the asset's link or to its file's address (/content/<id>/file/, relative or absolute
  with settings.SITE_URL). A download naming no asset is left alone.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import Resolver404, resolve, reverse

from alignment.lib.errors import DomainError
from alignment.models import User
from content.models import Asset, AssetUse, AssetUseKind
from leads.events import event_record
from leads.intake import CONTENT_ASSET_KEYS
from leads.models import EventType, Lead, LeadEvent, Touchpoint, TouchpointKind
from leads.services import touchpoint_record

NOTE_MAX = 1_000
# the system named on the content.engaged events the reaction records
ENGAGED_SYSTEM = "content library"


def asset_file_url(asset: Asset) -> str:
    """The asset's file as an absolute address (what a rep's email links to)."""
    return settings.SITE_URL + reverse("content:asset_file", kwargs={"pk": asset.pk})


def asset_link(asset: Asset) -> str:
    """Where the asset is opened: its link, or its uploaded file's address."""
    return asset.url or asset_file_url(asset)


@transaction.atomic
def asset_share(*, asset: Asset, lead: Lead, by: User | None, note: str = "") -> Touchpoint:
    """Share a sales-ready asset with a lead: the `content_shared` touchpoint (which checks that
    `by` may log sales activity on the lead: a rep only on his own), its AssetUse and the
    content.shared event. Returns the touchpoint."""
    if by is None:
        raise DomainError("Sharing content needs a person: a key acting as a rep or a manager.")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise DomainError(f"Keep the note under {NOTE_MAX:,} characters.", field="note")
    locked = Asset.objects.select_for_update().filter(pk=asset.pk).first()
    if locked is None:
        raise DomainError("This asset no longer exists.", field="asset")
    if not locked.sales_ready:
        raise DomainError(
            f"“{locked.title}” is not sales ready yet, so it cannot be shared with a lead. "
            "Marketing marks an asset sales ready when it may go to prospects.",
            field="asset",
        )
    touchpoint = touchpoint_record(
        lead=lead,
        kind=TouchpointKind.CONTENT_SHARED,
        metadata={
            "asset_id": locked.pk,
            "title": locked.title,
            "url": asset_link(locked),
            "note": note,
        },
        by=by,
    )
    AssetUse.objects.create(
        asset=locked,
        lead_id=touchpoint.lead_id,
        touchpoint=touchpoint,
        kind=AssetUseKind.SHARED,
        occurred_at=touchpoint.occurred_at,
        by=by,
    )
    event_record(
        type=EventType.CONTENT_SHARED,
        lead=Lead(pk=touchpoint.lead_id),
        by=by,
        at=touchpoint.occurred_at,
        payload={"asset_id": locked.pk, "touchpoint_id": touchpoint.pk, "title": locked.title},
    )
    return touchpoint


# --- engaged: a content download that names an asset ---------------------------------------------


def _asset_id_of(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if 0 < number < 2**63 else None
    return None


def _file_asset_id(url: str) -> int | None:
    """The asset id when `url` is an asset's file (or page) address on this site."""
    if url.startswith(settings.SITE_URL + "/"):
        url = url[len(settings.SITE_URL) :]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    try:
        match = resolve(parts.path)
    except Resolver404:
        return None
    if match.namespace == "content" and match.url_name in ("asset_file", "asset"):
        return match.kwargs.get("pk")
    return None


def asset_named(metadata: dict | None) -> Asset | None:
    """The asset a touchpoint's metadata names (see the module's docstring), or None."""
    metadata = metadata if isinstance(metadata, dict) else {}
    asset_id = _asset_id_of(metadata.get("asset_id"))
    if asset_id is not None:
        found = Asset.objects.filter(pk=asset_id).first()
        if found is not None:
            return found
    for key in CONTENT_ASSET_KEYS[1:]:
        url = metadata.get(key)
        if not isinstance(url, str) or not url.strip():
            continue
        url = url.strip()
        by_file = _file_asset_id(url)
        if by_file is not None:
            found = Asset.objects.filter(pk=by_file).first()
        else:
            found = Asset.objects.filter(url=url).exclude(url="").order_by("id").first()
        if found is not None:
            return found
    return None


@transaction.atomic
def asset_engaged_reaction(event: LeadEvent) -> None:
    """Outbox reaction to touchpoint.recorded[content]: the download's AssetUse (kind engaged)
    and its content.engaged event, once per touchpoint (a rerun finds the use and does
    nothing)."""
    touchpoint_id = (event.payload or {}).get("touchpoint_id")
    touchpoint = (
        Touchpoint.objects.select_for_update()
        .filter(pk=touchpoint_id, kind=TouchpointKind.CONTENT_DOWNLOAD)
        .first()
    )
    if touchpoint is None or AssetUse.objects.filter(touchpoint=touchpoint).exists():
        return
    asset = asset_named(touchpoint.metadata)
    if asset is None:
        return
    AssetUse.objects.create(
        asset=asset,
        lead_id=touchpoint.lead_id,
        touchpoint=touchpoint,
        kind=AssetUseKind.ENGAGED,
        occurred_at=touchpoint.occurred_at,
    )
    event_record(
        type=EventType.CONTENT_ENGAGED,
        lead=Lead(pk=touchpoint.lead_id),
        system=ENGAGED_SYSTEM,
        at=touchpoint.occurred_at,
        payload={"asset_id": asset.pk, "touchpoint_id": touchpoint.pk, "title": asset.title},
    )
