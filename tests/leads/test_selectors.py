import datetime as dt

import pytest
from django.utils import timezone

from content.services import asset_create
from content.sharing import asset_share
from content.voice.services import objection_log
from leads import selectors, services
from leads.models import Stage
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_timeline_is_newest_first_and_mixes_kinds(marketer, rep):
    lead = LeadFactory(owner=rep)
    services.touchpoint_record(
        lead=lead, kind="web_visit", occurred_at=timezone.now() - dt.timedelta(days=2), by=marketer
    )
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    kinds = [e.kind for e in selectors.lead_timeline(lead=lead)]
    # the first scoring gives the lead a grade: a score event of its own
    assert kinds == ["stage", "score", "touchpoint"]


def test_timeline_is_read_from_the_event_log_with_notes_and_who(
    marketer, rep, sales_manager, django_assert_num_queries
):
    lead = LeadFactory(owner=None)
    services.lead_update(lead=lead, changes={"company": "Engines Ltd"}, by=marketer)
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    services.touchpoint_record(
        lead=lead, kind="call", metadata={"note": "Asked for pricing"}, by=sales_manager
    )
    # merges, events, touchpoints, reasons (no assignment here, so no query for the owners)
    with django_assert_num_queries(4):
        entries = selectors.lead_timeline(lead=lead)
    by_title = {e.title: e for e in entries}
    assert by_title["Call"].detail == "Asked for pricing"
    assert by_title["Call"].who == str(sales_manager)
    assert by_title["New → MQL"].who == str(marketer)
    assert by_title["Changed company"].kind == "data"
    # each move once, although it has two events (lead.stage_changed and lead.mql)
    assert [e.title for e in entries].count("New → MQL") == 1


def test_leads_list_search_by_email_and_company():
    LeadFactory(email="ada@engines.example", company="Engines")
    LeadFactory(email="bob@widgets.example", company="Widgets")
    assert [x.company for x in selectors.leads_list(q="ADA@engines.example")] == ["Engines"]
    assert [x.company for x in selectors.leads_list(q="wid")] == ["Widgets"]


def test_timeline_tells_what_sales_shared_and_heard_in_words(marketer, rep):
    lead = LeadFactory(owner=rep)
    asset = asset_create(
        by=marketer,
        data={
            "title": "Banking case study",
            "kind": "case_study",
            "funnel_stage": "decision",
            "url": "https://example.com/banking",
            "sales_ready": True,
        },
    )
    asset_share(asset=asset, lead=lead, by=rep, note="after the demo")
    objection_log(lead=lead, by=rep, category="price", text="Twice what we pay now")

    entries = selectors.lead_timeline(lead=lead)

    # (the first touchpoint also gives the factory's unscored lead its first grade)
    assert [(e.kind, e.title, e.detail) for e in entries if e.kind != "score"] == [
        ("feedback", "Question or objection logged", "price"),
        ("touchpoint", "Content shared", "Banking case study · after the demo"),
    ]
