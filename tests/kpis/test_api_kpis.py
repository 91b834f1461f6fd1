"""/api/v1/kpis/: the weekly report's figures and the marketing page's rows, exactly what their
own functions return from the kpis selectors for the same period (scope `kpis:read`)."""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from kpis import selectors
from leads.models import Stage
from sla.clocks.models import ClockKind, ClockStatus
from sla.report.figures import agreement_timezone, marketing_figures, report_figures
from sla.report.services import sla_report_build
from sla.selectors import agreement_active
from tests.alignment.test_api_keys import _clear_throttle_cache, assert_problem  # noqa: F401
from tests.factories import LeadFactory, RepFactory, SourceFactory, UserFactory
from tests.kpis.test_selectors import WED47, clock, move
from tests.sla.test_api_sla import client

pytestmark = pytest.mark.django_db

BASE = "/api/v1/kpis"
# the Monday after W47 (and its month): the week is over, the month is not
AT = datetime(2026, 11, 30, 8, tzinfo=UTC)


def history(copies: int = 1) -> None:
    """W47: per copy three MQLs (one accepted, one rejected, one undecided), an opportunity
    worth 1200.50, a response clock met in 1 h and one breached, and a decision still open."""
    rep = RepFactory()
    source = SourceFactory(name="Webinar")
    for _ in range(copies):
        accepted, rejected, undecided = (LeadFactory(source=source) for _ in range(3))
        for lead in (accepted, rejected, undecided):
            move(lead, Stage.MQL, WED47, frm=Stage.NEW)
        move(accepted, Stage.SAL, WED47 + timedelta(hours=3), frm=Stage.MQL)
        move(
            rejected, Stage.REJECTED, WED47 + timedelta(hours=2), frm=Stage.MQL, reason="no_budget"
        )
        move(
            accepted,
            Stage.OPPORTUNITY,
            WED47 + timedelta(days=1),
            frm=Stage.SQL,
            deal_value="1200.50",
        )
        clock(accepted, rep, ClockKind.RESPONSE, WED47, status=ClockStatus.MET, hours=1)
        clock(rejected, rep, ClockKind.RESPONSE, WED47, status=ClockStatus.BREACHED, hours=6)
        clock(undecided, rep, ClockKind.DECISION, WED47, status=ClockStatus.PENDING)  # fmt: skip


def week_47():
    return selectors.iso_week_period("2026-W47", tz=agreement_timezone(agreement_active()))


def summary(api=None, **params):
    api = api or client("kpis:read")
    params = {"period": "2026-W47", "at": AT.isoformat(), **params}
    return api.get(f"{BASE}/summary/", {k: v for k, v in params.items() if v is not None})


# --- the figures ------------------------------------------------------------------------------


def test_the_summary_is_the_reports_figures_with_the_counts_behind_each_share():
    history()

    response = summary()

    assert response.status_code == 200, response.content
    body = response.json()
    assert body == report_figures(week="2026-W47", agreement=agreement_active(), now=AT)
    # the selectors' own numbers, counts and not only ratios
    period = week_47()
    assert body["marketing"]["acceptance"] == asdict(selectors.mql_acceptance(period=period))
    assert body["marketing"]["acceptance"] == {
        "mqls": 3,
        "accepted": 1,
        "rejected": 1,
        "undecided": 1,
        "rate": 50.0,
    }
    assert body["marketing"]["pipeline"] == {"opportunities": 1, "value": "1200.50"}
    response_clocks = selectors.sla_response_attainment(period=period)
    assert body["sales"]["response"] == asdict(response_clocks)
    assert (response_clocks.started, response_clocks.met, response_clocks.breached) == (2, 1, 1)
    assert body["sales"]["open_clocks"]["total"] == 1
    assert body["period"]["partial"] is False


def test_the_archived_weekly_report_has_the_same_figures_as_the_api():
    history()
    report = sla_report_build(week="2026-W47", now=AT)

    assert summary().json() == report.figures


def test_marketing_figures_for_a_week_and_a_month_are_the_marketing_pages(marketer):
    history()
    agreement = agreement_active()
    tz = agreement_timezone(agreement)
    api = client("kpis:read")

    week = api.get(f"{BASE}/marketing/", {"period": "2026-W47", "at": AT.isoformat()})
    month = api.get(f"{BASE}/marketing/", {"period": "2026-11", "at": AT.isoformat()})

    assert week.json() == marketing_figures(agreement=agreement, period=week_47().until(AT))
    assert month.json() == marketing_figures(
        agreement=agreement, period=selectors.month_period("2026-11", tz=tz).until(AT)
    )
    assert month.json()["mqls_delivered"] == 3


def test_without_a_period_the_week_of_at_is_counted():
    assert summary(period=None).json()["week"] == "2026-W49"


def test_without_a_period_the_current_week_is_counted_until_now():
    agreement = agreement_active()
    this_week = selectors.iso_week_of(timezone.now(), tz=agreement_timezone(agreement))

    response = client("kpis:read").get(f"{BASE}/summary/")

    assert response.status_code == 200
    assert response.json()["week"] == this_week


# the report's selectors, the feedback loops' sections included (flags, objections, content,
# stories): a fixed number each, the key lookup included
SUMMARY_QUERIES = 53


def test_the_summary_costs_a_fixed_number_of_queries(django_assert_num_queries):
    history()
    api = client("kpis:read")
    summary(api)
    with django_assert_num_queries(SUMMARY_QUERIES):
        summary(api)
    history(copies=3)
    with django_assert_num_queries(SUMMARY_QUERIES):
        assert summary(api).json()["marketing"]["acceptance"]["mqls"] == 12


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "period", ["2026-47", "2026-W54", "W47", "2026-11", "next week", "9999-W52", "0001-W01"]
)
def test_a_bad_week_is_a_400_field_error(period):
    body = assert_problem(summary(period=period), 400)

    assert list(body["errors"]) == ["period"]


@pytest.mark.parametrize("period", ["2026-13", "2026-W00", "2026", "9999-12"])
def test_a_bad_month_or_week_for_the_marketing_figures_is_a_400_field_error(period):
    response = client("kpis:read").get(f"{BASE}/marketing/", {"period": period})

    assert list(assert_problem(response, 400)["errors"]) == ["period"]


@pytest.mark.parametrize(
    "at", ["2026-11-30T08:00:00", "later", "2999-01-01T00:00:00Z", "0001-01-01T00:00:00Z"]
)
def test_a_naive_or_future_or_unreadable_time_is_refused(at):
    assert list(assert_problem(summary(at=at), 400)["errors"]) == ["at"]


def test_without_an_agreement_in_force_there_is_nothing_to_count_against():
    agreement = agreement_active()
    agreement.status = "retired"
    agreement.save(update_fields=["status"])

    body = assert_problem(summary(), 409)

    assert body["code"] == "no_agreement"


# --- scopes and roles -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/summary/", "/marketing/"])
def test_the_figures_need_kpis_read(path):
    history()

    response = client("sla:read", "scoring:read", "leads:read").get(BASE + path)

    body = assert_problem(response, 403)
    assert "kpis:read" in body["detail"]
    assert "marketing" not in body and "mqls_delivered" not in body


def test_a_sales_rep_reads_them_and_someone_without_a_role_does_not(rep):
    outsider = UserFactory(username="nobody", role="")

    assert summary(client("kpis:read", as_user=rep)).status_code == 200
    assert_problem(summary(client("kpis:read", as_user=outsider)), 403)
