"""asset.created and asset.updated: recorded with the write (no lead), payloads as documented."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from alignment.lib.errors import DomainError
from content.services import asset_create, asset_update
from leads.models import EventType, LeadEvent

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n"
BASE = {"title": "Bank case study", "kind": "case_study", "funnel_stage": "decision"}


def events(type):
    return list(LeadEvent.objects.filter(type=type).order_by("id"))


def test_created_and_updated_events(marketer):
    asset = asset_create(by=marketer, data={**BASE, "url": "https://example.com/a"})
    (created,) = events(EventType.ASSET_CREATED)
    assert (created.lead_id, created.actor) == (None, marketer)
    assert created.payload == {
        "asset_id": asset.pk,
        "title": "Bank case study",
        "kind": "case_study",
        "funnel_stage": "decision",
    }
    asset_update(
        asset=asset,
        by=marketer,
        data={"personas": "CFO", "sales_ready": True, "title": BASE["title"]},
    )
    asset_update(asset=asset, by=marketer, data={}, upload=SimpleUploadedFile("a.pdf", PDF))
    first, second = events(EventType.ASSET_UPDATED)
    assert first.payload == {
        "asset_id": asset.pk,
        "title": "Bank case study",
        "changed": ["personas", "sales_ready"],
    }
    assert second.payload["changed"] == ["url", "file"]
    assert second.lead_id is None


def test_a_refused_write_records_no_event(marketer):
    with pytest.raises(DomainError):
        asset_create(by=marketer, data={**BASE, "kind": "poster", "url": "https://x.example"})
    asset = asset_create(by=marketer, data={**BASE, "url": "https://example.com/a"})
    with pytest.raises(DomainError):
        asset_update(asset=asset, by=marketer, data={"url": "ftp://x"})
    assert len(events(EventType.ASSET_CREATED)) == 1
    assert not events(EventType.ASSET_UPDATED)
