"""The KPI page: each figure as its selector counts it, the filters, CSV export, who may see it
and a fixed number of queries."""

import csv
import io
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis import selectors, views
from kpis.models import Metric, PeriodKind
from kpis.selectors.goals import goals_timezone
from kpis.services import goal_create
from leads.models import Stage
from tests.factories import CampaignFactory, SourceFactory
from tests.kpis.history import new_lead, reads, settle, to_opportunity, utc, walk, won_path

pytestmark = pytest.mark.django_db
URL = "/kpis/"
WEEK = "2026-W47"  # 16 to 22 November 2026
# reads: session, user, agreement (time zone), the filters' options, the selectors (and the names
# of the sources and campaigns they group by), the goals
# board without goals; SQLite reads a median per stage with ORDER BY ... OFFSET, PostgreSQL in one
QUERIES = {"postgresql": 49, "sqlite": 56}


@pytest.fixture
def history(rep):
    google = SourceFactory(name="Google")
    linkedin = SourceFactory(name='=HYPERLINK("http://x")')  # a name that is a formula
    campaign = CampaignFactory(name="+Black Friday")  # and one that starts like one
    created = utc(11, 16, 7)
    won_path(new_lead(created, source=google, campaign=campaign, owner=rep), 16, 1000)
    to_opportunity(new_lead(created, source=google), 17, 500)
    walk(
        new_lead(created, source=linkedin),
        (Stage.MQL, utc(11, 17, 8)),
        (Stage.SAL, utc(11, 17, 9)),
        (Stage.LOST, utc(11, 17, 10), {"reason": "no_decision"}),
    )
    walk(
        new_lead(created, source=linkedin),
        (Stage.MQL, utc(11, 18, 8)),
        (Stage.REJECTED, utc(11, 18, 9), {"reason": "bad_fit"}),
    )
    settle()
    return {"google": google, "linkedin": linkedin, "campaign": campaign}


@pytest.fixture
def frozen(monkeypatch):
    """The page counts as of Saturday 21 November 2026, 12:00 UTC (in 2026-W47)."""
    monkeypatch.setattr(views, "timezone", SimpleNamespace(now=lambda: utc(11, 21, 12)))


def _page(client, user, **params):
    client.force_login(user)
    return client.get(URL, params)


def _table(response, key):
    return next(t for t in response.context["tables"] if t.key == key)


def _period():
    return selectors.iso_week_period(WEEK, tz=goals_timezone())


def test_each_figure_is_its_selectors_numbers(client, marketer, history):
    response = _page(client, marketer, period=WEEK)
    assert response.status_code == 200
    funnel = selectors.lead_funnel(period=_period())
    rows = _table(response, "funnel").rows
    assert [r[1] for r in rows] == [s.reached for s in funnel.steps]
    assert [r[1] for r in rows] == [4, 4, 3, 2, 2, 1]  # leads, MQL, SAL, SQL, opportunity, won
    velocity = selectors.sales_velocity(period=_period())
    total = _table(response, "velocity").rows[-1]
    assert total[:4] == ["Total", velocity.total.open_opportunities, 1, 0]
    assert total[5] == Decimal("1000") == velocity.total.won_value
    pipeline = _table(response, "pipeline_source").rows
    assert [(r[0], r[1], r[2]) for r in pipeline] == [("Google", 2, Decimal("1500"))]
    acceptance = selectors.mql_acceptance(period=_period())
    assert _table(response, "acceptance").rows[0] == ["Accepted", acceptance.accepted]
    reasons = selectors.rejection_reasons_by_source(period=_period())
    assert _table(response, "rejections").rows == [[r.reason, r.source, r.count] for r in reasons]
    assert [row[1:] for row in _table(response, "rejections").rows] == [
        [history["linkedin"].name, 1]
    ]
    html = response.content.decode()
    assert "=HYPERLINK(&quot;http://x&quot;)" in html  # a name is shown as text
    assert "€1,500" in html or "1,500" in html  # money through |money
    assert "Shared goals" in html and "No goal is set here" in html


def test_filters_change_the_figures(client, marketer, history, rep):
    response = _page(client, marketer, period=WEEK, source=history["linkedin"].pk)
    assert [r[1] for r in _table(response, "funnel").rows][:2] == [2, 2]
    assert _table(response, "pipeline_source").rows == []
    html = response.content.decode()
    assert "No deal in this period with these filters" in html
    by_rep = _page(client, marketer, period=WEEK, rep=rep.pk)
    assert [r[1] for r in _table(by_rep, "funnel").rows] == [1, 1, 1, 1, 1, 1]
    by_campaign = _page(client, marketer, period=WEEK, campaign=history["campaign"].pk)
    assert _table(by_campaign, "revenue_source").rows[0][1:] == [1, Decimal("1000")]
    other_week = _page(client, marketer, period="2026-W40")
    assert [r[1] for r in _table(other_week, "funnel").rows][0] == 0
    assert "No lead was created in this period" in other_week.content.decode()
    month = _page(client, marketer, period="2026-11")
    assert _table(month, "funnel").rows[0][1] == 4


def test_a_wrong_period_is_refused_in_place(client, marketer):
    response = _page(client, marketer, period="2026-W99")
    assert response.status_code == 400
    assert "week" in response.content.decode().lower()
    response = _page(client, marketer, period="soon")
    assert response.status_code == 400
    assert "Pick a month like 2026-11" in response.content.decode()


def test_csv_export_of_a_table_neutralises_formulas(client, marketer, history):
    response = _page(client, marketer, period=WEEK, export="funnel")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:2] == ["Stage", "Reached"]
    assert [r[1] for r in rows[1:]] == ["4", "4", "3", "2", "2", "1"]
    reasons = _page(client, marketer, period=WEEK, export="rejections").content.decode()
    assert ',"\'=HYPERLINK(""http://x"")",1' in reasons
    first = _page(client, marketer, period=WEEK, export="pipeline_first").content.decode()
    assert "\n'+Black Friday,1,1000.00" in first
    assert _page(client, marketer, period=WEEK, export="nothing").status_code == 404


def test_every_team_member_may_view_an_outsider_may_not(client, people, outsider):
    for user in people.values():
        if user != outsider:
            assert _page(client, user).status_code == 200
    assert _page(client, outsider).status_code == 403
    client.logout()
    assert client.get(URL).status_code == 302


def test_the_page_costs_a_fixed_number_of_queries(client, marketer, history):
    client.force_login(marketer)
    client.get(URL, {"period": WEEK})
    with CaptureQueriesContext(connection) as few:
        client.get(URL, {"period": WEEK})
    for day in (18, 19):
        won_path(new_lead(utc(11, day, 7), source=SourceFactory()), day, 300)
    settle()
    with CaptureQueriesContext(connection) as more:
        client.get(URL, {"period": WEEK})
    assert len(reads(more)) == len(reads(few))
    assert len(reads(few)) == QUERIES[connection.vendor]


def test_tables_are_built_from_the_selectors_only(history):
    tables = views.kpi_tables(period=_period(), source_id=None, campaign_id=None, rep_id=None)
    keys = [t.key for t in tables]
    assert keys == [
        "funnel",
        "acceptance",
        "rejections",
        "feedback",
        "feedback_campaign",
        "velocity",
        "pipeline_source",
        "pipeline_first",
        "pipeline_last",
        "revenue_source",
        "revenue_first",
        "revenue_last",
        "sla",
        "speed_rep",
        "speed_source",
        "content",
        "content_unused",
        "objections",
        "objection_competitors",
        "win_reasons",
        "loss_reasons",
        "win_reasons_campaign",
        "loss_reasons_campaign",
    ]


def test_sales_feedback_by_source_and_by_campaign(client, marketer, history):
    """The MQLs of W47: Google's two accepted; the formula-named source's one accepted, one
    rejected as a bad fit; only the won lead is in the Black Friday campaign."""
    response = _page(client, marketer, period=WEEK)
    by_source = _table(response, "feedback").rows
    assert by_source == [
        ['=HYPERLINK("http://x")', 2, 1, 1, 0, 50.0, "Bad fit (1)"],
        ["Google", 2, 2, 0, 0, 100.0, ""],
    ]
    by_campaign = _table(response, "feedback_campaign").rows
    assert by_campaign == [
        ["No campaign", 3, 2, 1, 0, 66.7, "Bad fit (1)"],
        ["+Black Friday", 1, 1, 0, 0, 100.0, ""],
    ]
    # the old sales-feedback page sends its readers here
    old = client.get("/leads/feedback/")
    assert old.status_code == 301 and old["Location"].endswith("/kpis/#feedback")
    assert 'id="feedback"' in response.content.decode()


def test_default_period_is_this_month(client, marketer, history, frozen):
    response = _page(client, marketer)
    assert response.context["period_label"] == "2026-11"
    assert _table(response, "funnel").rows[0][1] == 4


def test_goals_board_shows_marketing_shared_and_sales_side_by_side(
    client, marketer, marketing_manager, sales_manager, history, frozen
):
    week = {"period_kind": PeriodKind.WEEK, "period_start": date(2026, 11, 16)}
    goal_create(
        by=marketing_manager, metric=Metric.MQLS_DELIVERED, target="40", marketing=True, **week
    )
    goal_create(
        by=sales_manager,
        metric=Metric.REVENUE_WON,
        target="5000",
        marketing=True,
        sales=True,
        **week,
    )
    response = _page(client, marketer, period=WEEK)
    columns = dict(response.context["goal_columns"])
    assert [g.metric for g in columns["Marketing's"]] == [Metric.MQLS_DELIVERED]
    assert [g.metric for g in columns["Shared"]] == [Metric.REVENUE_WON]
    assert columns["Sales'"] == ()
    board = selectors.goals_board(at=utc(11, 21, 12), tz=goals_timezone())
    assert columns["Shared"][0].actual == board.shared[0].actual == Decimal("1000")
    html = response.content.decode()
    assert "€5,000" in html and "€1,000" in html
    assert html.count("No goal is set here") == 1
