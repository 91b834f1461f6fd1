"""The assets API: scopes, roles through the key's acting user, filters and cursor pages, JSON
and multipart writes with field errors, sharing, and the suggestions for a lead."""

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from content.models import Asset, AssetUse
from leads.models import EventType, LeadEvent, Stage
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n"
READ, WRITE = "content:read", "content:write"
NEW = {
    "title": "Bank case study",
    "kind": "case_study",
    "funnel_stage": "decision",
    "url": "https://example.com/bank",
    "industries": ["Banking"],
    "sales_ready": True,
}


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def client_with(*scopes, as_user=None) -> APIClient:
    _, raw = api_key_create(name="CMS", scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def assert_problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def make(title, **fields):
    fields.setdefault("kind", "case_study")
    fields.setdefault("funnel_stage", "decision")
    fields.setdefault("url", f"https://example.com/{title.replace(' ', '-')}")
    return Asset.objects.create(title=title, **fields)


def test_a_marketer_key_adds_a_link_with_its_event(marketer):
    response = client_with(READ, WRITE, as_user=marketer).post(
        "/api/v1/assets/", NEW, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    asset = Asset.objects.get()
    assert body["id"] == asset.pk
    assert (body["owner"], body["industries"], body["link"]) == (
        "marketer",
        ["banking"],
        "https://example.com/bank",
    )
    assert response["Location"].endswith(f"/api/v1/assets/{asset.pk}/")
    (event,) = LeadEvent.objects.filter(type=EventType.ASSET_CREATED)
    assert event.lead_id is None
    assert event.payload == {
        "asset_id": asset.pk,
        "title": "Bank case study",
        "kind": "case_study",
        "funnel_stage": "decision",
    }


def test_multipart_upload(marketer, settings):
    settings.SITE_URL = "https://pipeline.example.com"
    response = client_with(WRITE, as_user=marketer).post(
        "/api/v1/assets/",
        {
            "title": "One-pager",
            "kind": "one_pager",
            "funnel_stage": "awareness",
            "personas": "CFO, IT manager",
            "file": SimpleUploadedFile("one.pdf", PDF),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["personas"] == ["cfo", "it manager"]
    assert body["content_type"] == "application/pdf"
    assert body["file_url"] == f"https://pipeline.example.com/content/{body['id']}/file/"
    assert body["sales_ready"] is False


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**NEW, "kind": "poster"}, "kind"),
        ({**NEW, "title": ""}, "title"),
        ({**NEW, "url": "ftp://x.example"}, "url"),
        ({k: v for k, v in NEW.items() if k != "url"}, "url"),
        ({**NEW, "industries": [1, 2]}, "industries"),
        ({**NEW, "campaign": 999_999}, "campaign"),
        ({**NEW, "campaign": "x"}, "campaign"),
        ({**NEW, "sales_ready": "maybe"}, "sales_ready"),
    ],
)
def test_bad_input_is_a_400_with_field_errors(marketer, data, field):
    body = assert_problem(
        client_with(WRITE, as_user=marketer).post("/api/v1/assets/", data, format="json"), 400
    )
    assert field in body["errors"]
    assert not Asset.objects.exists()


def test_an_upload_of_the_wrong_type_is_a_field_error(marketer):
    body = assert_problem(
        client_with(WRITE, as_user=marketer).post(
            "/api/v1/assets/",
            {
                "title": "x",
                "kind": "deck",
                "funnel_stage": "awareness",
                "file": SimpleUploadedFile("x.pdf", b"MZ"),
            },
            format="multipart",
        ),
        400,
    )
    assert "not a PDF file" in body["errors"]["file"][0]


@pytest.mark.parametrize("who", ["rep", "sales_manager", None])
def test_only_marketing_keys_write(people, who):
    as_user = people[who] if who else None
    assert_problem(
        client_with(WRITE, as_user=as_user).post("/api/v1/assets/", NEW, format="json"), 403
    )
    asset = make("x")
    assert_problem(
        client_with(WRITE, as_user=as_user).patch(
            f"/api/v1/assets/{asset.pk}/", {"title": "y"}, format="json"
        ),
        403,
    )
    assert Asset.objects.get().title == "x"


def test_scopes(marketer):
    asset = make("x")
    lead = LeadFactory()
    no_scope = client_with("leads:read", as_user=marketer)
    for path in ("/api/v1/assets/", f"/api/v1/assets/{asset.pk}/"):
        assert_problem(no_scope.get(path), 403)
    assert_problem(no_scope.get(f"/api/v1/leads/{lead.pk}/suggested-content/"), 403)
    reader = client_with(READ, as_user=marketer)
    assert_problem(reader.post("/api/v1/assets/", NEW, format="json"), 403)
    assert_problem(reader.patch(f"/api/v1/assets/{asset.pk}/", {"title": "y"}, format="json"), 403)
    assert_problem(
        reader.post(f"/api/v1/assets/{asset.pk}/share/", {"lead": lead.pk}, format="json"), 403
    )
    assert reader.get("/api/v1/assets/").status_code == 200


def test_patch_changes_what_is_sent_and_records_the_changed_fields(marketer):
    asset = make("Old", industries=["banking"])
    response = client_with(READ, WRITE, as_user=marketer).patch(
        f"/api/v1/assets/{asset.pk}/", {"title": "New", "sales_ready": True}, format="json"
    )
    assert response.status_code == 200, response.content
    asset.refresh_from_db()
    assert (asset.title, asset.sales_ready, asset.industries) == ("New", True, ["banking"])
    (event,) = LeadEvent.objects.filter(type=EventType.ASSET_UPDATED)
    assert event.payload == {
        "asset_id": asset.pk,
        "title": "New",
        "changed": ["title", "sales_ready"],
    }


def test_list_filters_and_cursor(marketer):
    make("Bank", industries=["banking"], personas=["cfo"], sales_ready=True)
    make("Retail", kind="deck", funnel_stage="awareness", industries=["retail"])
    make("Draft", industries=["banking"])
    reader = client_with(READ)  # a key of its own may read

    def titles(query):
        response = reader.get(f"/api/v1/assets/?{query}")
        assert response.status_code == 200, response.content
        return sorted(r["title"] for r in response.json()["results"])

    assert titles("") == ["Bank", "Draft", "Retail"]
    assert titles("industry=BANKING") == ["Bank", "Draft"]
    assert titles("industry=banking&sales_ready=true") == ["Bank"]
    assert titles("sales_ready=false") == ["Draft", "Retail"]
    assert titles("persona=cfo") == ["Bank"]
    assert titles("stage=awareness") == ["Retail"]
    assert titles("kind=deck") == ["Retail"]
    assert titles("q=ank") == ["Bank"]
    first = reader.get("/api/v1/assets/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next_cursor"]
    rest = reader.get(f"/api/v1/assets/?page_size=2&cursor={first['next_cursor']}").json()
    assert len(rest["results"]) == 1 and rest["next_cursor"] is None
    for bad in ("stage=later", "kind=x", "sales_ready=maybe", "cursor=junk", "page_size=0"):
        body = assert_problem(reader.get(f"/api/v1/assets/?{bad}"), 400)
        assert bad.split("=")[0] in body["errors"]


def test_share_over_the_api(rep, other_rep):
    asset = make("Bank", sales_ready=True)
    lead = LeadFactory(owner=rep)
    writer = client_with(WRITE, as_user=rep)
    response = writer.post(
        f"/api/v1/assets/{asset.pk}/share/", {"lead": lead.pk, "note": "hi"}, format="json"
    )
    assert response.status_code == 201, response.content
    use = AssetUse.objects.get()
    assert response.json()["touchpoint_id"] == use.touchpoint_id
    assert use.touchpoint.metadata["note"] == "hi"
    theirs = LeadFactory(owner=other_rep)
    body = assert_problem(
        writer.post(f"/api/v1/assets/{asset.pk}/share/", {"lead": theirs.pk}, format="json"), 400
    )
    assert "not assigned to you" in body["detail"]
    body = assert_problem(
        writer.post(f"/api/v1/assets/{asset.pk}/share/", {"lead": 999_999}, format="json"), 400
    )
    assert "lead" in body["errors"]
    draft = make("Draft")
    body = assert_problem(
        writer.post(f"/api/v1/assets/{draft.pk}/share/", {"lead": lead.pk}, format="json"), 400
    )
    assert "not sales ready" in body["errors"]["asset"][0]
    assert_problem(writer.post("/api/v1/assets/999999/share/", {"lead": lead.pk}), 404)
    assert_problem(
        client_with(WRITE).post(
            f"/api/v1/assets/{asset.pk}/share/", {"lead": lead.pk}, format="json"
        ),
        403,
    )
    assert AssetUse.objects.count() == 1


def test_suggested_content_for_a_lead(rep):
    make("Bank", industries=["banking"], sales_ready=True)
    make("Draft", industries=["banking"])
    lead = LeadFactory(industry="Banking", stage=Stage.NEW)
    reader = client_with(READ, as_user=rep)
    body = reader.get(f"/api/v1/leads/{lead.pk}/suggested-content/").json()
    assert [(r["asset"]["title"], r["reasons"], r["helped_wins"]) for r in body["results"]] == [
        ("Bank", ["for Banking"], 0)
    ]
    assert_problem(reader.get(f"/api/v1/leads/{lead.pk}/suggested-content/?limit=0"), 400)
    assert_problem(reader.get("/api/v1/leads/999999/suggested-content/"), 404)
