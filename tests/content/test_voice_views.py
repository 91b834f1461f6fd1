"""Voice of the prospect's pages: the lead page's card (the form for those who may log, the
objections for everyone), logging in one step from the lead page and the queue (back to a safe
local `next` only; refusals on a small page with the form's errors, never a 500), marketing's
voice page (filters, segments, quotes, linking an answer), the marketing home, the KPI page and
the weekly report's section."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from content.models import Asset, Objection
from content.voice.services import objection_log
from sla.report import services as report_services
from tests.factories import CampaignFactory, LeadFactory
from tests.sla.test_clocks import mql_assigned_to
from tests.sla.test_queue import ALWAYS_OPEN, set_calendar

pytestmark = pytest.mark.django_db

LOG = reverse("content:voice_log")
VOICE = reverse("content:voice")


def card(client, lead) -> str:
    body = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    match = re.search(r'<section class="card" id="voice">(.*?)</section>', body, re.S)
    assert match, "the voice card is on the lead page"
    return match.group(1)


def ready_asset(title="Pricing explained"):
    return Asset.objects.create(
        title=title, kind="deck", funnel_stage="decision", url="https://e.x/a", sales_ready=True
    )


# --- the lead page ---------------------------------------------------------------------------------


def test_the_owner_sees_the_form_and_the_objections_newest_first(client, rep, marketer):
    lead = LeadFactory(owner=rep)
    objection_log(lead=lead, by=rep, category="price", text="Too <b>dear</b>.")
    newer = objection_log(lead=lead, by=rep, category="security", text="SSO?", kind="question")
    newer.answer = ready_asset()
    newer.save()
    client.force_login(rep)
    text = card(client, lead)
    assert 'action="/content/voice/log/"' in text and 'name="text"' in text
    assert text.index("SSO?") < text.index("Too &lt;b&gt;dear&lt;/b&gt;.")  # escaped, newest first
    assert "Pricing explained" in text and "question" in text


@pytest.mark.parametrize("who", ["marketer", "other_rep"])
def test_who_may_not_log_sees_the_objections_without_the_form(client, request, who, rep):
    lead = LeadFactory(owner=rep)
    objection_log(lead=lead, by=rep, category="timing", text="Next quarter.")
    client.force_login(request.getfixturevalue(who))
    text = card(client, lead)
    assert "Next quarter." in text and "<form" not in text


def test_logging_from_the_lead_page_goes_back_to_it_with_a_message(client, rep):
    campaign = CampaignFactory()
    lead = LeadFactory(owner=rep, campaign=campaign)
    client.force_login(rep)
    response = client.post(
        LOG,
        {
            "lead": lead.pk,
            "kind": "objection",
            "category": "competitor",
            "competitor": "Acme",
            "text": "Acme is cheaper.",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("leads:detail", args=[lead.pk]) + "#voice"
    assert "is logged on" in response.content.decode()
    objection = Objection.objects.get()
    assert (objection.lead, objection.campaign, objection.competitor) == (lead, campaign, "Acme")


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/sla/queue/#mine-lead-1", "/sla/queue/#mine-lead-1"),
        ("https://evil.example/x", None),
        ("//evil.example/x", None),
        ("javascript:alert(1)", None),
    ],
)
def test_only_a_safe_local_next_is_followed(client, rep, next_url, expected):
    lead = LeadFactory(owner=rep)
    client.force_login(rep)
    response = client.post(
        LOG,
        {
            "lead": lead.pk,
            "kind": "question",
            "category": "price",
            "text": "How much?",
            "next": next_url,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == (expected or reverse("leads:detail", args=[lead.pk]) + "#voice")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"category": "price", "text": "  "}, "Write down what the prospect said"),
        ({"category": "", "text": "Dear"}, "Pick a category"),
        ({"category": "weather", "text": "Dear"}, "Select a valid choice"),
        ({"category": "price", "text": "x" * 2001}, "at most 2000 characters"),
    ],
)
def test_bad_input_shows_the_form_with_its_errors(client, rep, data, message):
    lead = LeadFactory(owner=rep)
    client.force_login(rep)
    response = client.post(LOG, {"lead": lead.pk, "kind": "objection", **data})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and "Back without logging" in body
    assert reverse("leads:detail", args=[lead.pk]) in body
    assert not Objection.objects.exists()


def test_someone_elses_lead_or_no_lead_is_a_form_error_not_a_500(client, rep, other_rep):
    theirs = LeadFactory(owner=other_rep)
    client.force_login(rep)
    refused = client.post(
        LOG, {"lead": theirs.pk, "kind": "objection", "category": "price", "text": "Dear"}
    )
    assert refused.status_code == 400 and "is not assigned to you" in refused.content.decode()
    for junk in ("", "abc", "99999999", "9" * 40):
        answer = client.post(
            LOG, {"lead": junk, "kind": "objection", "category": "price", "text": "Dear"}
        )
        assert answer.status_code == 400
    assert not Objection.objects.exists()


def test_marketing_posting_the_form_is_refused_on_the_page(client, marketer, rep):
    lead = LeadFactory(owner=rep)
    client.force_login(marketer)
    response = client.post(
        LOG, {"lead": lead.pk, "kind": "objection", "category": "price", "text": "Dear"}
    )
    assert response.status_code == 400 and "may not do objection.log" in response.content.decode()


def test_get_is_not_allowed_and_anonymous_is_sent_to_login(client, rep):
    assert client.get(LOG).status_code == 302
    client.force_login(rep)
    assert client.get(LOG).status_code == 405


# --- the queue -------------------------------------------------------------------------------------


def test_the_queue_row_has_the_one_step_form_back_to_the_row(client, rep, sales_manager, marketer):
    set_calendar(ALWAYS_OPEN)
    lead = mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(rep)
    body = client.get("/sla/queue/").content.decode()
    assert "Log what you heard" in body
    assert f'name="next" value="/sla/queue/#mine-lead-{lead.pk}"' in body
    response = client.post(
        LOG,
        {
            "lead": lead.pk,
            "kind": "objection",
            "category": "integration",
            "text": "Does it talk to SAP?",
            "next": f"/sla/queue/#mine-lead-{lead.pk}",
        },
    )
    assert response["Location"] == f"/sla/queue/#mine-lead-{lead.pk}"
    assert Objection.objects.get().category == "integration"


def test_the_team_queue_offers_the_form_to_the_sales_manager_not_to_marketing(
    client, rep, sales_manager, marketer
):
    set_calendar(ALWAYS_OPEN)
    mql_assigned_to(rep, sales_manager, marketer)
    client.force_login(sales_manager)
    assert "Log what you heard" in client.get("/sla/queue/").content.decode()
    client.force_login(marketer)
    assert "Log what you heard" not in client.get("/sla/queue/").content.decode()


# --- marketing's voice page ------------------------------------------------------------------------


@pytest.fixture
def heard(rep):
    banking = LeadFactory(owner=rep, industry="Banking", first_name="Bea", last_name="Bank")
    retail = LeadFactory(owner=rep, industry="Retail")
    price = objection_log(lead=banking, by=rep, category="price", text="Half the budget.")
    objection_log(lead=banking, by=rep, category="price", text="Still too dear.")
    objection_log(lead=retail, by=rep, category="competitor", competitor="Acme", text="Acme!")
    return {"price": price, "banking": banking}


def test_the_voice_page_shows_categories_competitors_and_quotes(client, marketer, heard):
    ready_asset()
    client.force_login(marketer)
    response = client.get(VOICE)
    assert response.status_code == 200
    body = response.content.decode()
    categories = body[body.index('id="voice-categories"') : body.index('id="voice-competitors"')]
    assert categories.index("Price") < categories.index("Competitor")
    assert "66.7%" in categories and "33.3%" in categories
    assert "Acme" in body[body.index('id="voice-competitors"') :]
    assert "Bea Bank" in body and "Half the budget." in body
    assert body.count('/answer/"') == 3  # an answer form per quote
    assert "Pricing explained" in body


def test_the_voice_page_splits_by_segment_and_filters_by_category(client, marketer, heard):
    client.force_login(marketer)
    body = client.get(VOICE, {"segment": "industry"}).content.decode()
    assert "by industry" in body and "banking" in body and "retail" in body
    only = client.get(VOICE, {"category": "competitor"}).content.decode()
    assert "Acme!" in only and "Half the budget." not in only


def test_sales_see_the_voice_page_without_the_answer_forms(client, rep, heard):
    ready_asset()
    client.force_login(rep)
    body = client.get(VOICE).content.decode()
    assert "Half the budget." in body and "/answer/" not in body


@pytest.mark.parametrize(
    "params", [{"period": "2026-W99"}, {"period": "soon"}, {"segment": "moon"}, {"source": "x"}]
)
def test_bad_filters_are_a_400_page_not_a_500(client, marketer, params):
    client.force_login(marketer)
    assert client.get(VOICE, params).status_code == 400


def test_marketing_links_an_answer_from_the_page(client, marketer, heard):
    answer = ready_asset()
    client.force_login(marketer)
    target = heard["price"]
    response = client.post(
        reverse("content:voice_answer", args=[target.pk]),
        {"answer": answer.pk, "next": f"{VOICE}?category=price#quote-{target.pk}"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{VOICE}?category=price#quote-{target.pk}"
    assert "answers it" in response.content.decode()
    target.refresh_from_db()
    assert target.answer == answer and target.answered_by == marketer
    client.post(reverse("content:voice_answer", args=[target.pk]), {"answer": ""})
    target.refresh_from_db()
    assert target.answer is None


def test_a_draft_or_junk_answer_is_a_message_and_sales_are_refused(client, marketer, rep, heard):
    draft = Asset.objects.create(
        title="Draft", kind="deck", funnel_stage="decision", url="https://e.x/d", sales_ready=False
    )
    url = reverse("content:voice_answer", args=[heard["price"].pk])
    client.force_login(marketer)
    for junk in (draft.pk, "abc", 99999999):
        response = client.post(url, {"answer": junk}, follow=True)
        assert (
            response.status_code == 200 and "Pick a sales-ready asset" in response.content.decode()
        )
    assert (
        client.post(reverse("content:voice_answer", args=[999999]), {"answer": ""}).status_code
        == 404
    )
    client.force_login(rep)
    assert client.post(url, {"answer": ready_asset().pk}).status_code == 403
    heard["price"].refresh_from_db()
    assert heard["price"].answer is None


# --- the marketing home, the KPI page, the weekly report ------------------------------------------


def test_the_marketing_home_shows_this_weeks_top_categories_and_quotes(client, marketer, heard):
    client.force_login(marketer)
    body = client.get("/").content.decode()
    section = body[body.index('id="home-voice"') :]
    assert "Price" in section and "Still too dear." in section and "/content/voice/" in section


def test_the_marketing_home_says_when_nothing_was_logged(client, marketer):
    client.force_login(marketer)
    body = client.get("/").content.decode()
    assert 'id="home-voice"' in body and "no question or objection this week" in body


def test_the_kpi_page_has_the_objection_tables_and_their_csv(client, marketer, heard):
    client.force_login(marketer)
    body = client.get("/kpis/").content.decode()
    assert (
        "Questions and objections heard by sales" in body and "Competitors prospects named" in body
    )
    csv = client.get("/kpis/", {"export": "objections"})
    assert csv.status_code == 200
    lines = csv.content.decode().splitlines()
    assert lines[0] == "Category,Logged,Share,Answered with content,Answered share"
    assert lines[1].startswith("Price,2,")


def test_the_weekly_report_has_top_objections_and_old_reports_render_without(rep):
    lead = LeadFactory(owner=rep, first_name="Quinn", last_name="Quote")
    when = dt.datetime(2026, 11, 18, 10, tzinfo=dt.UTC)  # Wednesday of 2026-W47
    Objection.objects.create(
        lead=lead, category="price", text="<i>Too</i> dear", logged_at=when, logged_by=rep
    )
    report = report_services.sla_report_build(
        week="2026-W47", now=dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    )
    assert report.figures["feedback"]["objections"]["total"] == 1
    _, _, html = report_services.sla_report_render(figures=report.figures)
    assert (
        "Top objections" in html and "&lt;i&gt;Too&lt;/i&gt; dear" in html and "Quinn Quote" in html
    )
    old = dict(report.figures)
    del old["feedback"]
    _, _, html = report_services.sla_report_render(figures=old)
    assert "Top objections" not in html
    assert timezone.now()  # the render used no clock of its own


def test_an_answer_no_longer_sales_ready_is_shown_as_such(client, marketer, heard):
    answer = ready_asset("Old deck")
    target = heard["price"]
    target.answer = answer
    target.save()
    Asset.objects.filter(pk=answer.pk).update(sales_ready=False)
    client.force_login(marketer)
    body = client.get(VOICE).content.decode()
    assert f'value="{answer.pk}" selected>Old deck (no longer sales ready)' in body
