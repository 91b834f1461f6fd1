"""The home page (/) by role: each role's figures are the selectors' own, on small fixed data
(week 47 of 2026 in Berlin, the agreement's zone); an outsider gets a 403; the queries are pinned."""

import html
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alignment import home
from kpis import selectors
from kpis.models import Goal, Metric, PeriodKind
from leads.models import Announcement, Lead, Stage
from leads.routing import rep_open_leads
from sla import queue
from sla.models import Agreement
from sla.report.figures import marketing_figures
from sla.selectors import agreement_active
from tests.factories import LeadFactory
from tests.sla.test_clocks import mql_assigned_to
from tests.sla.test_report import WEEK, history  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

# Friday of W47, 12:00 in Berlin
NOW = datetime(2026, 11, 20, 11, tzinfo=UTC)
# everyone: session, user, agreement, goals, the won customers (count and value, the list, their
# announcements), the bell's count = 8 with no goal set; a goal adds its own read (MQLs: 1)
ADMIN_QUERIES = 9  # with one goal
# + the rep's clocks and their MQL snapshots, his open lead flags, his closes without a story
REP_QUERIES = 11
# + reps, their open load, unassigned MQLs, breaches, open clocks, attainment (2), speed (2)
MANAGER_QUERIES = 17
# + marketing_figures (MQLs, the MQLs with their decisions, pipeline), rejection reasons, their
# sources' names and the reasons' labels; the feedback sections: open lead flags, this week's
# objections (categories, quotes), content (shares, unused, requests)
MARKETING_QUERIES = 23


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def week():
    return selectors.iso_week_period(WEEK, tz="Europe/Berlin").until(NOW)


def get(client, user, *, queries=None):
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/")
    assert response.status_code == 200
    if queries is not None:
        assert len(captured) == queries, [q["sql"] for q in captured]
    return response, html.unescape(response.content.decode())


@pytest.fixture
def goal(db):
    return Goal.objects.create(
        metric=Metric.MQLS_DELIVERED,
        period_kind=PeriodKind.WEEK,
        period_start=date(2026, 11, 16),
        target=Decimal("10"),
        marketing=True,
        sales=True,
    )


def test_anonymous_goes_to_login_and_an_outsider_is_refused(client, outsider):
    assert client.get("/")["Location"].startswith("/login/")
    client.force_login(outsider)
    response = client.get("/")
    assert response.status_code == 403


def test_login_lands_on_the_home(client, marketer):
    response = client.post("/login/", {"username": "marketer", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert b"<h1>Home</h1>" in response.content


def test_a_rep_lands_on_his_queue(client, rep, other_rep, sales_manager, marketer):
    mine = mql_assigned_to(rep, sales_manager, marketer, company="Initech")
    mql_assigned_to(other_rep, sales_manager, marketer, company="Hooli")
    response, text = get(client, rep, queries=REP_QUERIES)
    expected = queue.queue_for_rep(rep=rep, now=NOW)
    assert [r.lead.pk for r in response.context["mine"]] == [r.lead.pk for r in expected]
    assert [r.lead.pk for r in expected] == [mine.pk]
    assert f'id="home-lead-{mine.pk}"' in text and "Hooli" not in text
    assert 'href="/sla/queue/"' in text
    # no moves on the home: the queue is where a rep works
    assert "/accept/" not in text


def test_a_rep_with_an_empty_queue_is_told_what_comes(client, rep):
    _, text = get(client, rep)
    assert "Nothing waits for you right now." in text


def test_a_sales_manager_sees_the_team_against_the_agreement(client, history, sales_manager):  # noqa: F811
    LeadFactory(stage=Stage.MQL, owner=None)
    response, text = get(client, sales_manager, queries=MANAGER_QUERIES)
    c = response.context
    assert c["week"].label == WEEK
    assert c["response"] == selectors.sla_response_attainment(period=week())
    assert c["speed"] == selectors.speed_to_lead(period=week())
    assert c["breaches"] == selectors.sla_breaches_by_rep(period=week())
    open_clocks = selectors.sla_clocks_open(at=NOW)
    assert c["open_total"] == sum(r.open for r in open_clocks)
    assert c["overdue_total"] == sum(r.overdue for r in open_clocks) == 1
    assert c["unassigned_count"] == 1 == Lead.objects.filter(stage=Stage.MQL, owner=None).count()
    assert c["unassigned_url"] == "/leads/?owner=none&stage=mql"
    loads = rep_open_leads(rep_ids=[r.rep.pk for r in c["rep_rows"]])
    assert {r.rep.pk: r.open_leads for r in c["rep_rows"]} == loads
    rows = {r.rep.username: r for r in c["rep_rows"]}
    assert (rows["bad"].breaches, rows["bad"].open_clocks, rows["bad"].overdue) == (1, 1, 1)
    assert rows["ann"].breaches == 0
    share = c["response"].share
    assert f"{share:g}%" in text or f"{share:.1f}%" in text
    assert "Assign them" in text and 'href="/leads/?owner=none&stage=mql"' in text


def test_marketing_sees_delivery_against_the_commitment(
    client,
    history,  # noqa: F811
    marketer,
    marketing_manager,
):
    response, text = get(client, marketer, queries=MARKETING_QUERIES)
    agreement = agreement_active()
    expected = marketing_figures(agreement=agreement, period=week())
    assert response.context["marketing"] == expected
    assert expected["mqls_delivered"] == 4 and expected["acceptance"]["rate"] == 50.0
    reasons = selectors.rejection_reasons_by_source(period=week(), limit=home.TOP_REASONS)
    assert response.context["reasons"] == reasons and reasons[0].source == "Google"
    assert "Why MQLs were rejected" in text and "Google" in text
    # the marketing manager has the same home
    response, _ = get(client, marketing_manager)
    assert response.context["kind"] == "marketing"


def test_everyone_sees_the_goals_and_the_won_customers(client, history, goal, admin_user):  # noqa: F811
    winner = history["winner"]
    Announcement.objects.create(lead=winner, title="Won: Acme (€3,000)", body="Story")
    response, text = get(client, admin_user, queries=ADMIN_QUERIES)
    c = response.context
    board = selectors.goals_board(at=NOW, tz="Europe/Berlin", trend_periods=0)
    assert c["goals"] == board and [g.goal_id for g in board.shared] == [goal.pk]
    assert board.shared[0].actual == Decimal(4)
    count, value, won = selectors.won_customers(period=week(), limit=home.WON_LISTED)
    assert (c["won_count"], c["won_value"]) == (count, value) == (1, Decimal("3000"))
    assert [w for w, _ in c["won"]] == won
    assert "€3,000" in text and "Won: Acme (€3,000)" in text
    assert "MQLs delivered" in text and "4 / 10" in text


@pytest.mark.parametrize("role", ["rep", "sales_manager", "marketer", "admin_user"])
def test_no_agreement_in_force_reads_as_a_sentence(client, role, request):
    Agreement.objects.filter(pk=agreement_active().pk).update(status="retired")
    _, text = get(client, request.getfixturevalue(role))
    assert "No service-level agreement is in force" in text
