"""The content library's assets: who may add them, what a link or an upload must be (size, type
judged by content), and how an uploaded file is served."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from alignment.lib.errors import DomainError, PermissionDenied
from content.models import Asset
from content.services import asset_create, asset_update
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
BASE = {"title": "Bank case study", "kind": "case_study", "funnel_stage": "decision"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def upload(name, content, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_marketing_adds_a_link_with_tags_and_a_campaign(marketer):
    campaign = CampaignFactory()
    asset = asset_create(
        by=marketer,
        data={
            **BASE,
            "url": "https://example.com/bank",
            "personas": "CFO, it manager, cfo",
            "industries": ["Banking"],
            "campaign": campaign.pk,
            "sales_ready": True,
        },
    )
    asset.refresh_from_db()
    assert (asset.owner, asset.campaign, asset.sales_ready) == (marketer, campaign, True)
    assert (asset.personas, asset.industries) == (["cfo", "it manager"], ["banking"])
    assert not asset.file


def test_sales_may_read_but_not_add(rep):
    with pytest.raises(PermissionDenied):
        asset_create(by=rep, data={**BASE, "url": "https://example.com/x"})
    assert not Asset.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({**BASE, "title": " "}, "title", "Give the asset a title"),
        ({**BASE, "kind": "poster"}, "kind", "Pick a case study"),
        ({**BASE, "funnel_stage": "later"}, "funnel_stage", "awareness, consideration"),
        ({**BASE, "url": "ftp://example.com/x"}, "url", "starting with https://"),
        ({**BASE}, "url", "either a web address or a file"),
        ({**BASE, "url": "https://x.example", "campaign": 999_999}, "campaign", "no such"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_stored(marketer, data, field, message):
    with pytest.raises(DomainError, match=message) as refused:
        asset_create(by=marketer, data=data)
    assert refused.value.field == field
    assert not Asset.objects.exists()


def test_an_upload_is_checked_by_size_and_by_its_content(marketer, settings, tmp_path):
    settings.CONTENT_MAX_UPLOAD_BYTES = 1_000
    with pytest.raises(
        DomainError, match="The file is 2 KB; the library takes files up to 1 KB"
    ) as too_big:
        asset_create(by=marketer, data=BASE, upload=upload("big.pdf", PDF + b"x" * 2_000))
    assert too_big.value.field == "file"
    assert "Link a larger one" in too_big.value.message
    with pytest.raises(DomainError, match=r"\.exe cannot be uploaded. Allowed: PDF"):
        asset_create(by=marketer, data=BASE, upload=upload("setup.exe", b"MZ\x90\x00"))
    with pytest.raises(DomainError, match="named .pdf but its content is not a PDF"):
        asset_create(by=marketer, data=BASE, upload=upload("deck.pdf", b"MZ\x90\x00 program"))
    with pytest.raises(DomainError, match="not both"):
        asset_create(
            by=marketer, data={**BASE, "url": "https://x.example"}, upload=upload("a.pdf", PDF)
        )
    assert not Asset.objects.exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_uploaded_file_is_served_with_its_detected_type_and_sandboxed(client, marketer, rep):
    asset = asset_create(by=marketer, data=BASE, upload=upload("Bank study.pdf", PDF, "text/html"))
    assert (asset.content_type, asset.file_size, asset.file_name) == (
        "application/pdf",
        len(PDF),
        "Bank study.pdf",
    )
    client.force_login(rep)
    response = client.get(f"/content/{asset.pk}/file/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    # the type found in its bytes, not the one the browser claimed at upload
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert 'filename="Bank study.pdf"' in response["Content-Disposition"]
    link = asset_create(by=marketer, data={**BASE, "url": "https://example.com/x"})
    assert client.get(f"/content/{link.pk}/file/").status_code == 404
    client.logout()
    assert client.get(f"/content/{asset.pk}/file/").status_code == 302  # to the login


def test_a_new_upload_replaces_the_file_and_a_link_replaces_an_upload(
    marketer, django_capture_on_commit_callbacks
):
    asset = asset_create(by=marketer, data=BASE, upload=upload("a.pdf", PDF))
    old = Path(asset.file.path)
    with pytest.raises(DomainError, match="content is not a PNG"):
        asset_update(asset=asset, by=marketer, data={}, upload=upload("b.png", PDF))
    with django_capture_on_commit_callbacks(execute=True):
        asset = asset_update(
            asset=asset, by=marketer, data={"title": "New"}, upload=upload("b.png", PNG)
        )
    assert (asset.title, asset.content_type, asset.url) == ("New", "image/png", "")
    # the replaced file is deleted once the change is committed
    assert not old.exists() and Path(asset.file.path).read_bytes() == PNG
    asset = asset_update(asset=asset, by=marketer, data={"url": "https://example.com/v"})
    asset.refresh_from_db()
    assert (asset.url, asset.file.name, asset.content_type) == ("https://example.com/v", "", "")
