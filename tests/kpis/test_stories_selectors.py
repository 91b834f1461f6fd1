"""Why deals were won and lost (kpis.selectors.stories), against figures counted by hand on a
small week: reasons by source and by campaign with each group's share, the coverage of closes
with a story, the filters, the weekly report's section and the KPI page's tables."""

import datetime as dt

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from content.stories.services import story_record
from kpis.selectors.periods import iso_week_period
from kpis.selectors.stories import deal_reasons, stories_report, story_coverage
from kpis.story_tables import story_tables
from leads.intake import source_for
from leads.models import Stage
from sla.report.services import sla_report_preview, sla_report_render
from tests.content.test_stories_data import close
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

WEEK = iso_week_period("2026-W47", tz="UTC")  # Monday 16 to Monday 23 November 2026
TUE = dt.datetime(2026, 11, 17, 10, tzinfo=dt.UTC)


@pytest.fixture
def week(sales_manager, rep):
    """W47: four wins (three with a story), four losses (three with a story); one win of W46."""
    google, linkedin = source_for("Google"), source_for("LinkedIn")
    spring = CampaignFactory(name="Spring")
    at = [TUE + dt.timedelta(hours=h) for h in range(10)]

    def told(closed, reasons, **fields):
        return story_record(stage_change=closed, by=sales_manager, reasons=reasons, **fields)

    w1 = close(owner=rep, at=at[0], source=google, campaign=spring, company="Initech")
    told(w1, ["product_fit", "proof"], sentence="The bank case study settled it.")
    told(close(owner=rep, at=at[1], source=google), ["product_fit"])
    told(close(owner=rep, at=at[2], source=linkedin, campaign=spring), ["value"])
    close(owner=rep, at=at[3], source=google)  # won, not told
    told(close(owner=rep, at=TUE - dt.timedelta(days=7), source=google), ["value"])  # W46
    l1 = close(outcome=Stage.LOST, owner=rep, at=at[4], source=linkedin, company="Hooli")
    told(l1, ["competitor"], competitor="Acme", sentence="Acme bundled it with their ERP.")
    l2 = close(outcome=Stage.LOST, owner=rep, at=at[5], source=google)
    told(l2, ["competitor"], competitor="  acme ")
    told(close(outcome=Stage.LOST, owner=rep, at=at[6], source=google), ["price"])
    close(outcome=Stage.LOST, owner=rep, at=at[7], source=google)  # lost, not told
    return {"google": google, "linkedin": linkedin, "spring": spring, "w1": w1}


def rows(result):
    return [(r.group, r.reason_code, r.count, r.stories, r.share) for r in result.rows]


def test_win_reasons_by_source_with_each_groups_share_and_the_coverage(week):
    result = deal_reasons(period=WEEK, outcome="won", group_by="source")
    assert rows(result) == [
        ("Google", "product_fit", 2, 2, 100.0),
        ("Google", "proof", 1, 2, 50.0),
        ("LinkedIn", "value", 1, 1, 100.0),
    ]
    assert (result.coverage.closes, result.coverage.with_story, result.coverage.share) == (
        4,
        3,
        75.0,
    )


def test_win_reasons_by_campaign(week):
    result = deal_reasons(period=WEEK, outcome="won", group_by="campaign")
    assert rows(result) == [
        ("Spring", "product_fit", 1, 2, 50.0),
        ("Spring", "proof", 1, 2, 50.0),
        ("Spring", "value", 1, 2, 50.0),
        ("No campaign", "product_fit", 1, 1, 100.0),
    ]


def test_loss_reasons_by_source(week):
    result = deal_reasons(period=WEEK, outcome="lost")
    assert rows(result) == [
        ("Google", "competitor", 1, 2, 50.0),
        ("Google", "price", 1, 2, 50.0),
        ("LinkedIn", "competitor", 1, 1, 100.0),
    ]
    assert result.coverage.share == 75.0


def test_filters_read_the_storys_source_and_the_leads_for_untold_closes(week):
    # the lead of a told win moves to LinkedIn after the story: the story stays Google's
    lead = week["w1"].lead
    lead.source = week["linkedin"]
    lead.save()
    google = deal_reasons(period=WEEK, outcome="won", source_id=week["google"].pk)
    assert rows(google) == [("Google", "product_fit", 2, 2, 100.0), ("Google", "proof", 1, 2, 50.0)]
    # Google's wins: two told, one untold (counted by its lead's source)
    assert (google.coverage.closes, google.coverage.with_story) == (3, 2)
    spring = story_coverage(period=WEEK, outcome="won", campaign_id=week["spring"].pk)
    assert (spring.closes, spring.with_story, spring.share) == (2, 2, 100.0)


def test_an_empty_week_has_no_rows_and_no_share(db):
    result = deal_reasons(period=iso_week_period("2026-W10", tz="UTC"), outcome="won")
    assert result.rows == [] and result.coverage.closes == 0 and result.coverage.share is None


def test_the_report_figures_are_json_ready_and_counted_by_hand(week):
    report = stories_report(period=WEEK)
    assert report["won"] == {"closes": 4, "with_story": 3, "share": 75.0}
    assert report["lost"] == {"closes": 4, "with_story": 3, "share": 75.0}
    assert [(r["code"], r["count"], r["share"]) for r in report["win_reasons"]] == [
        ("product_fit", 2, 66.7),
        ("proof", 1, 33.3),
        ("value", 1, 33.3),
    ]
    assert [(r["code"], r["count"]) for r in report["loss_reasons"]] == [
        ("competitor", 2),
        ("price", 1),
    ]
    assert report["competitors"] == [{"name": "Acme", "count": 2}]
    assert [(s["outcome"], s["customer"], s["sentence"]) for s in report["sentences"]] == [
        ("lost", "Hooli", "Acme bundled it with their ERP."),
        ("won", "Initech", "The bank case study settled it."),
    ]
    assert report["sentences"][0]["rep"] and report["sentences"][0]["closed_at"].startswith(
        "2026-11-17T14:00"
    )


def test_the_report_section_reads_why_we_won_and_lost(week):
    html = render_to_string(
        "sla/report_stories.html", {"f": {"feedback": {"stories": stories_report(period=WEEK)}}}
    )
    assert "Why we won and lost" in html
    assert "Won:</span> Product fit" in html and "Lost to:</strong> Acme (2)" in html
    assert "“Acme bundled it with their ERP.”" in html and "Hooli" in html
    assert 'class="' not in html  # email-safe: inline styles only


@pytest.mark.parametrize("figures", [{}, {"feedback": {}}, {"feedback": {"stories": {}}}])
def test_an_archived_report_without_stories_renders_nothing(figures):
    assert render_to_string("sla/report_stories.html", {"f": figures}).strip() == ""


def test_a_week_without_closes_says_so(db):
    html = render_to_string(
        "sla/report_stories.html",
        {
            "f": {
                "feedback": {
                    "stories": stories_report(period=iso_week_period("2026-W10", tz="UTC"))
                }
            }
        },
    )
    assert "No deal was won or lost this week." in html


def test_the_report_preview_of_the_week_shows_the_section(week, client, marketer):
    client.force_login(marketer)
    page = client.get("/sla/reports/preview/", {"week": "2026-W47"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "Why we won and lost" in body and "In the rep's words" in body
    assert "3 of 4 with the rep's story" in body


def test_kpi_tables_by_source_and_campaign_with_the_honest_note(week):
    tables = {t.key: t for t in story_tables(period=WEEK)}
    assert list(tables) == [
        "win_reasons",
        "loss_reasons",
        "win_reasons_campaign",
        "loss_reasons_campaign",
    ]
    assert tables["win_reasons"].rows[0] == ["Google", "Product fit", 2, 2, 100.0]
    assert "3 of 4 deals won" in tables["win_reasons"].note
    assert "Be honest about how we closed the deal" in tables["loss_reasons"].note
    assert tables["loss_reasons_campaign"].rows[0][0] == "No campaign"


def test_the_kpi_page_shows_and_exports_the_tables(week, client, marketer):
    client.force_login(marketer)
    url = reverse("kpis:page")
    body = client.get(url, {"period": "2026-W47"}).content.decode()
    assert 'id="win_reasons"' in body and "Why we lost by campaign" in body
    export = client.get(url, {"period": "2026-W47", "export": "loss_reasons"})
    assert export.status_code == 200
    lines = export.content.decode().splitlines()
    assert lines[0] == "Source,Reason,Deals,Stories,Share of stories"
    assert lines[1] == "Google,Chose a competitor,1,2,50.0"


def test_the_tables_cost_a_fixed_number_of_queries(week, django_assert_num_queries):
    # per outcome: the closes, the reasons, and the names of reasons, sources and campaigns
    # (the week's lost stories have no campaign to name)
    with django_assert_num_queries(9):
        tables = story_tables(period=WEEK)
    assert all(t.rows for t in tables)
    with django_assert_num_queries(4):
        assert not any(t.rows for t in story_tables(period=iso_week_period("2026-W10", tz="UTC")))


def test_the_plain_text_email_tells_why_we_won_and_lost(week):
    figures = sla_report_preview(week="2026-W47")
    _, text, _ = sla_report_render(figures=figures)
    plain = text.split("WHY WE WON AND LOST")[1]
    assert "Won: 4 (3 with a story)" in plain
    assert "Lost to: Acme (2)" in plain
    assert '"Acme bundled it with their ERP."' in plain
