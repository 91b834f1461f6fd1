"""Sharing an asset with a lead (one transaction: touchpoint, use, event) and linking a content
download that names an asset (after commit, through the real outbox)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from alignment.lib.errors import DomainError, PermissionDenied
from content.models import Asset, AssetUse
from content.services import asset_create
from content.sharing import asset_engaged_reaction, asset_share
from leads.importing.touchpoints import touchpoints_record_bulk
from leads.models import EventType, LeadEvent, OutboxEntry, Touchpoint
from leads.services import touchpoint_record
from tests.factories import LeadFactory
from tests.kpis.history import settle

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n"


@pytest.fixture
def ready(marketer):
    return asset_create(
        by=marketer,
        data={
            "title": "Bank case study",
            "kind": "case_study",
            "funnel_stage": "decision",
            "url": "https://example.com/bank",
            "sales_ready": True,
        },
    )


@pytest.fixture
def draft(marketer):
    return asset_create(
        by=marketer,
        data={
            "title": "Draft deck",
            "kind": "deck",
            "funnel_stage": "awareness",
            "url": "https://example.com/draft",
        },
    )


def events(type, lead=None):
    qs = LeadEvent.objects.filter(type=type)
    if lead is not None:
        qs = qs.filter(lead_id=lead.pk)
    return list(qs.order_by("id"))


def test_a_rep_shares_a_sales_ready_asset_with_his_lead(rep, ready):
    lead = LeadFactory(owner=rep)
    touchpoint = asset_share(asset=ready, lead=lead, by=rep, note="after our call")
    touchpoint.refresh_from_db()
    assert touchpoint.kind == "content_shared"
    assert touchpoint.metadata == {
        "asset_id": ready.pk,
        "title": "Bank case study",
        "url": "https://example.com/bank",
        "note": "after our call",
    }
    use = AssetUse.objects.get()
    assert (use.asset, use.lead_id, use.touchpoint, use.kind, use.by) == (
        ready,
        lead.pk,
        touchpoint,
        "shared",
        rep,
    )
    (shared,) = events(EventType.CONTENT_SHARED, lead)
    assert shared.payload == {
        "asset_id": ready.pk,
        "touchpoint_id": touchpoint.pk,
        "title": "Bank case study",
    }
    assert shared.actor == rep
    # sharing is a sales touch but not a first touch: the SLA clock is not stopped
    (recorded,) = events(EventType.TOUCHPOINT_RECORDED, lead)
    assert recorded.payload["sales"] is True
    assert "first_sales_touch" not in recorded.payload
    lead.refresh_from_db()
    assert lead.first_sales_touch_at is None


def test_sharing_twice_is_two_shares(rep, ready):
    lead = LeadFactory(owner=rep)
    asset_share(asset=ready, lead=lead, by=rep)
    asset_share(asset=ready, lead=lead, by=rep)
    assert AssetUse.objects.filter(kind="shared").count() == 2
    assert len(events(EventType.CONTENT_SHARED, lead)) == 2


def test_an_uploaded_asset_is_shared_with_its_absolute_file_address(marketer, rep, settings):
    settings.SITE_URL = "https://pipeline.example.com"
    asset = asset_create(
        by=marketer,
        data={"title": "One-pager", "kind": "one_pager", "funnel_stage": "decision"},
        upload=SimpleUploadedFile("one.pdf", PDF),
    )
    Asset.objects.filter(pk=asset.pk).update(sales_ready=True)
    touchpoint = asset_share(asset=asset, lead=LeadFactory(owner=rep), by=rep)
    assert touchpoint.metadata["url"] == f"https://pipeline.example.com/content/{asset.pk}/file/"


def test_an_asset_not_sales_ready_is_refused_and_nothing_is_written(rep, draft):
    lead = LeadFactory(owner=rep)
    with pytest.raises(DomainError, match="not sales ready yet"):
        asset_share(asset=draft, lead=lead, by=rep)
    assert not Touchpoint.objects.exists()
    assert not AssetUse.objects.exists()
    assert not events(EventType.CONTENT_SHARED)


def test_a_rep_may_not_share_with_another_reps_lead(rep, other_rep, ready):
    lead = LeadFactory(owner=other_rep)
    with pytest.raises(DomainError, match="not assigned to you"):
        asset_share(asset=ready, lead=lead, by=rep)
    assert not AssetUse.objects.exists()


def test_marketing_may_not_share(marketer, ready):
    with pytest.raises(PermissionDenied):
        asset_share(asset=ready, lead=LeadFactory(), by=marketer)
    assert not AssetUse.objects.exists()


def test_a_sales_manager_shares_with_any_lead(sales_manager, other_rep, ready):
    asset_share(asset=ready, lead=LeadFactory(owner=other_rep), by=sales_manager)
    assert AssetUse.objects.get().by == sales_manager


def test_sharing_needs_a_person(ready):
    with pytest.raises(DomainError, match="needs a person"):
        asset_share(asset=ready, lead=LeadFactory(), by=None)


# --- engaged: a content download naming an asset, after commit -----------------------------------


def download(marketer, lead, **metadata):
    return touchpoint_record(lead=lead, kind="content_download", metadata=metadata, by=marketer)


@pytest.mark.parametrize(
    "metadata",
    [
        lambda a, site: {"asset_id": a.pk},
        lambda a, site: {"asset_id": str(a.pk)},
        lambda a, site: {"url": "https://example.com/bank"},
        lambda a, site: {"asset_url": f"/content/{a.pk}/file/"},
        lambda a, site: {"url": f"{site}/content/{a.pk}/file/"},
    ],
    ids=["id", "id-as-text", "link", "file-path", "file-absolute"],
)
def test_a_download_naming_an_asset_becomes_an_engaged_use(marketer, ready, settings, metadata):
    settings.SITE_URL = "https://pipeline.example.com"
    lead = LeadFactory()
    touchpoint = download(marketer, lead, **metadata(ready, settings.SITE_URL))
    assert not AssetUse.objects.exists()  # not yet: after commit
    (recorded,) = events(EventType.TOUCHPOINT_RECORDED, lead)
    assert recorded.payload["content"] is True
    settle()
    use = AssetUse.objects.get()
    assert (use.asset, use.lead_id, use.touchpoint, use.kind, use.by) == (
        ready,
        lead.pk,
        touchpoint,
        "engaged",
        None,
    )
    assert use.occurred_at == touchpoint.occurred_at
    (engaged,) = events(EventType.CONTENT_ENGAGED, lead)
    assert engaged.payload == {
        "asset_id": ready.pk,
        "touchpoint_id": touchpoint.pk,
        "title": "Bank case study",
    }


def test_the_reaction_is_idempotent(marketer, ready):
    lead = LeadFactory()
    download(marketer, lead, asset_id=ready.pk)
    settle()
    (recorded,) = events(EventType.TOUCHPOINT_RECORDED, lead)
    asset_engaged_reaction(recorded)
    assert AssetUse.objects.count() == 1
    assert len(events(EventType.CONTENT_ENGAGED)) == 1


def test_unknown_assets_and_other_touches_queue_or_link_nothing(marketer, ready):
    lead = LeadFactory()
    download(marketer, lead, asset_id=999_999)
    download(marketer, lead, url="https://elsewhere.example/x")
    download(marketer, lead, page="/whitepaper")  # names no asset: no flag, nothing queued
    touchpoint_record(lead=lead, kind="web_visit", metadata={"asset_id": ready.pk}, by=marketer)
    flags = [e.payload.get("content") for e in events(EventType.TOUCHPOINT_RECORDED, lead)]
    assert flags == [True, True, None, None]
    reaction = "content.sharing.asset_engaged_reaction"
    assert OutboxEntry.objects.filter(reaction=reaction).count() == 2
    settle()
    assert not AssetUse.objects.exists()
    assert not events(EventType.CONTENT_ENGAGED)


def test_the_bulk_path_flags_content_downloads_too(marketer, ready):
    lead = LeadFactory()
    results = touchpoints_record_bulk(
        items=[
            {
                "lead_id": lead.pk,
                "kind": "content_download",
                "occurred_at": "2026-11-02T09:00:00Z",
                "metadata": {"asset_id": ready.pk},
            },
            {"lead_id": lead.pk, "kind": "web_visit", "occurred_at": "2026-11-02T09:01:00Z"},
        ],
        by=marketer,
        system="",
    )
    assert [r.result for r in results] == ["recorded", "recorded"]
    flags = [e.payload.get("content") for e in events(EventType.TOUCHPOINT_RECORDED, lead)]
    assert flags == [True, None]
    settle()
    use = AssetUse.objects.get()
    assert (use.asset, use.kind) == (ready, "engaged")
