"""The library's pages per role: the library (filters, sales-ready default, pages of 50), an
asset's page, adding and changing assets with form errors, and sharing from the lead page."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from content.models import Asset, AssetUse
from leads.models import Stage
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n"
NOW = timezone.now()


def asset(title, *, ready=True, days_old=0, **fields):
    fields.setdefault("kind", "case_study")
    fields.setdefault("funnel_stage", "decision")
    return Asset.objects.create(
        title=title,
        url=f"https://example.com/{title.replace(' ', '-')}",
        sales_ready=ready,
        updated_at=NOW - timedelta(days=days_old),
        **fields,
    )


def shown(response) -> list[str]:
    return [a.title for a, _ in response.context["assets"]]


@pytest.fixture
def library(db):
    return [
        asset("Bank story", industries=["banking"], personas=["cfo"]),
        asset(
            "Retail deck", kind="deck", funnel_stage="awareness", industries=["retail"], days_old=1
        ),
        asset("Bank draft", ready=False, industries=["banking"], days_old=2),
    ]


def test_sales_see_sales_ready_assets_by_default_and_may_ask_for_all(client, rep, library):
    client.force_login(rep)
    assert shown(client.get("/content/")) == ["Bank story", "Retail deck"]
    assert shown(client.get("/content/?ready=all")) == ["Bank story", "Retail deck", "Bank draft"]
    assert shown(client.get("/content/?ready=no")) == ["Bank draft"]
    page = client.get("/content/").content.decode()
    assert "Add an asset" not in page


def test_marketing_sees_everything_and_may_add(client, marketer, library):
    client.force_login(marketer)
    response = client.get("/content/")
    assert shown(response) == ["Bank story", "Retail deck", "Bank draft"]
    assert 'id="asset-new"' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("stage=awareness", ["Retail deck"]),
        ("kind=deck", ["Retail deck"]),
        ("industry=Banking", ["Bank story", "Bank draft"]),
        ("industry=bank", []),  # a whole tag, not part of one
        ("persona=CFO", ["Bank story"]),
        ("q=story", ["Bank story"]),
        ("ready=yes&industry=banking", ["Bank story"]),
        ("stage=later", ["Bank story", "Retail deck", "Bank draft"]),  # a bad value: ignored
        ("stage=later&kind=deck", ["Retail deck"]),  # the others still filter
    ],
)
def test_filters(client, marketer, library, query, titles):
    client.force_login(marketer)
    response = client.get(f"/content/?{query}")
    assert response.status_code == 200
    assert shown(response) == titles


def test_pages_of_fifty_by_cursor(client, marketer):
    for n in range(52):
        asset(f"Asset {n:02}", days_old=n)
    client.force_login(marketer)
    first = client.get("/content/")
    assert len(shown(first)) == 50
    cursor = first.context["next_cursor"]
    assert cursor
    second = client.get(f"/content/?cursor={cursor}")
    assert shown(second) == ["Asset 50", "Asset 51"]
    assert second.context["next_cursor"] is None
    # a cursor that is not ours: the first page, not an error
    assert len(shown(client.get("/content/?cursor=junk"))) == 50


def test_the_asset_page_shows_details_and_recent_shares(client, rep, library):
    story = library[0]
    lead = LeadFactory(owner=rep, first_name="Ada", last_name="Byron")
    from_touch = lead.touchpoints.create(kind="content_shared", occurred_at=NOW)
    AssetUse.objects.create(
        asset=story, lead=lead, touchpoint=from_touch, kind="shared", occurred_at=NOW, by=rep
    )
    client.force_login(rep)
    page = client.get(f"/content/{story.pk}/").content.decode()
    assert "https://example.com/Bank-story" in page
    assert "Ada Byron" in page
    assert 'id="asset-edit"' not in page
    assert client.get("/content/999999/").status_code == 404


def test_marketing_adds_a_link(client, marketer):
    client.force_login(marketer)
    response = client.post(
        "/content/new/",
        {
            "title": "New one-pager",
            "kind": "one_pager",
            "funnel_stage": "consideration",
            "personas": "CFO, IT manager",
            "industries": "Banking",
            "url": "https://example.com/one",
            "sales_ready": "on",
        },
    )
    created = Asset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/content/{created.pk}/"
    assert (created.owner, created.personas, created.sales_ready) == (
        marketer,
        ["cfo", "it manager"],
        True,
    )


def test_upload_errors_are_shown_on_the_form(client, marketer, settings):
    settings.CONTENT_MAX_UPLOAD_BYTES = 1_000
    client.force_login(marketer)
    base = {"title": "Big", "kind": "deck", "funnel_stage": "awareness"}
    too_big = client.post(
        "/content/new/", {**base, "file": SimpleUploadedFile("big.pdf", PDF + b"x" * 2_000)}
    )
    assert too_big.status_code == 400
    assert "up to 1 KB" in str(too_big.context["form"].errors["file"])
    renamed = client.post(
        "/content/new/", {**base, "file": SimpleUploadedFile("prog.pdf", b"MZ\x90\x00")}
    )
    assert "is not a PDF file" in str(renamed.context["form"].errors["file"])
    neither = client.post("/content/new/", base)
    assert "either a web address or a file" in str(neither.context["form"].errors["url"])
    assert not Asset.objects.exists()


def test_marketing_replaces_a_link_with_a_file(client, marketer, library):
    story = library[0]
    client.force_login(marketer)
    form = client.get(f"/content/{story.pk}/edit/")
    assert form.context["form"].initial["personas"] == "cfo"
    response = client.post(
        f"/content/{story.pk}/edit/",
        {
            "title": "Bank story (PDF)",
            "kind": "case_study",
            "funnel_stage": "decision",
            "url": "",
            "file": SimpleUploadedFile("story.pdf", PDF),
        },
    )
    assert response.status_code == 302
    story.refresh_from_db()
    assert (story.title, story.url, story.content_type) == (
        "Bank story (PDF)",
        "",
        "application/pdf",
    )
    assert story.sales_ready is False  # unticked


@pytest.mark.parametrize("role", ["rep", "sales_manager", "outsider"])
def test_only_marketing_and_admins_add_or_change(client, people, library, role):
    client.force_login(people[role])
    assert client.get("/content/new/").status_code == 403
    assert client.post(f"/content/{library[0].pk}/edit/", {"title": "x"}).status_code == 403
    assert Asset.objects.filter(title="x").count() == 0


def test_outsiders_see_nothing(client, outsider, library):
    client.force_login(outsider)
    assert client.get("/content/").status_code == 403
    assert client.get(f"/content/{library[0].pk}/").status_code == 403


# --- sharing from the lead page -----------------------------------------------------------------


def test_the_lead_page_suggests_and_shares_in_one_click(client, rep, library):
    lead = LeadFactory(owner=rep, industry="Banking", title="CFO", stage=Stage.SQL)
    client.force_login(rep)
    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert 'id="suggested-content"' in page
    assert "Bank story" in page and "Bank draft" not in page
    assert f'action="/content/{library[0].pk}/share/"' in page
    response = client.post(f"/content/{library[0].pk}/share/", {"lead": lead.pk}, follow=True)
    assert response.redirect_chain[-1][0] == f"/leads/{lead.pk}/#suggested-content"
    assert "is shared with" in response.content.decode()
    assert AssetUse.objects.get().lead_id == lead.pk
    assert "Shared " in response.content.decode()


def test_a_refused_share_is_a_readable_message(client, rep, other_rep, library):
    draft = library[2]
    mine = LeadFactory(owner=rep)
    response = client.post(f"/content/{draft.pk}/share/", {"lead": mine.pk})
    assert response.status_code == 302  # not logged in: to the login page
    client.force_login(rep)
    response = client.post(f"/content/{draft.pk}/share/", {"lead": mine.pk}, follow=True)
    assert response.status_code == 200
    assert "not sales ready yet" in response.content.decode()
    theirs = LeadFactory(owner=other_rep)
    response = client.post(f"/content/{library[0].pk}/share/", {"lead": theirs.pk}, follow=True)
    assert "not assigned to you" in response.content.decode()
    response = client.post(f"/content/{library[0].pk}/share/", {"lead": "x"}, follow=True)
    assert "Pick a lead" in response.content.decode()
    assert not AssetUse.objects.exists()


def test_no_share_button_where_the_user_may_not_share(client, marketer, rep, other_rep, library):
    lead = LeadFactory(owner=other_rep, industry="Banking")
    for user in (marketer, rep):
        client.force_login(user)
        page = client.get(f"/leads/{lead.pk}/").content.decode()
        assert "Bank story" in page
        assert "/share/" not in page


def test_the_empty_state_links_to_the_library(client, rep):
    lead = LeadFactory(owner=rep, industry="Nothing", stage=Stage.REJECTED)
    client.force_login(rep)
    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Browse the content library" in page


@pytest.mark.parametrize(
    "url, current",
    [
        ("/content/", "Library"),
        ("/content/requests/", "Content requests"),
        ("/content/voice/", "Voice of the prospect"),
        ("/content/flags/", "Lead flags"),
    ],
)
def test_each_content_page_links_the_others_and_marks_itself(client, rep, url, current):
    client.force_login(rep)
    page = client.get(url).content.decode()
    for link in ("/content/", "/content/requests/", "/content/voice/", "/content/flags/"):
        assert f'href="{link}"' in page
    assert f'aria-current="page">{current}</a>' in page
