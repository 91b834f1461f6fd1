"""The funnel on a hand-built cohort: re-MQL, recycle, a skipped stage and the week's edges."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis import selectors
from leads.models import Stage
from tests.factories import SourceFactory
from tests.kpis.history import (
    W47,
    imported_move,
    move,
    new_lead,
    reads,
    settle,
    utc,
    walk,
    won_path,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(rep):
    google = SourceFactory(name="Google")
    # A: all the way, a day in each stage
    a = won_path(new_lead(utc(11, 16, 10), source=google), 16, 1000)
    # B: MQL, rejected as "not ready" (recycled), MQL again, accepted, recycled from SAL
    b = walk(
        new_lead(utc(11, 16, 10)),
        (Stage.MQL, utc(11, 16, 11)),
        (Stage.REJECTED, utc(11, 16, 13), {"reason": "not_ready"}),
        (Stage.MQL, utc(11, 17, 11)),
        (Stage.SAL, utc(11, 17, 17)),
        (Stage.RECYCLED, utc(11, 18, 17), {"reason": "no_response"}),
    )
    # C: never moves
    c = new_lead(utc(11, 16, 10), source=google, owner=rep)
    # D: created Monday 00:30 in Berlin (Sunday 23:30 UTC): in W47; rejected after 4 hours
    d = walk(
        new_lead(utc(11, 15, 23, 30)),
        (Stage.MQL, utc(11, 16, 0)),
        (Stage.REJECTED, utc(11, 16, 4), {"reason": "bad_fit"}),
    )
    # E: created Sunday 23:30 in Berlin (22:30 UTC): W46, not in the cohort
    e = won_path(new_lead(utc(11, 15, 22, 30)), 16, 500)
    # F: an imported history that goes from MQL straight to won after 48 hours
    f = new_lead(utc(11, 16, 10))
    move(f, Stage.MQL, utc(11, 17, 11))
    imported_move(f, Stage.MQL, Stage.WON, utc(11, 19, 11), deal_value=700)
    settle()
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "google": google, "rep": rep}


def _steps(funnel):
    return [(s.stage, s.reached, s.conversion, s.dropped) for s in funnel.steps]


def test_the_cohort_is_followed_to_the_furthest_stage_it_reached(history):
    funnel = selectors.lead_funnel(period=W47)
    assert funnel.leads == 5  # A, B, C, D, F (E was created in W46)
    assert _steps(funnel) == [
        ("lead", 5, None, 1),  # C went nowhere
        ("mql", 4, 80.0, 1),  # B counts once although it was an MQL twice; D was rejected
        ("sal", 3, 75.0, 1),  # F skipped SAL and SQL but reached won: it counts here
        ("sql", 2, 66.7, 0),
        ("opportunity", 2, 100.0, 0),
        ("won", 2, 100.0, 0),
    ]
    assert funnel.overall == 40.0


def test_time_in_stage_is_the_median_of_the_ended_stays(history):
    funnel = selectors.lead_funnel(period=W47)
    hours = {s.stage: (s.median_hours_in_stage, s.stays_measured) for s in funnel.steps}
    # MQL stays: A 24, B 2 and 6 (two stays), D 4, F 48 -> median 6
    assert hours["mql"] == (6.0, 5)
    assert hours["sal"] == (24.0, 2)  # A and B
    assert hours["sql"] == (24.0, 1)
    assert hours["opportunity"] == (24.0, 1)
    assert hours["lead"] == (None, 0)
    assert hours["won"] == (None, 0)


def test_until_cuts_where_the_cohort_got_and_filters_narrow_it(history):
    # as of Wednesday 00:00 UTC: A and B accepted, D and F still MQLs
    early = selectors.lead_funnel(period=W47, until=utc(11, 18, 0))
    assert [s.reached for s in early.steps] == [5, 4, 2, 0, 0, 0]
    google = selectors.lead_funnel(period=W47, source_id=history["google"].pk)
    assert [s.reached for s in google.steps] == [2, 1, 1, 1, 1, 1]
    mine = selectors.lead_funnel(period=W47, rep_id=history["rep"].pk)
    assert [s.reached for s in mine.steps] == [1, 0, 0, 0, 0, 0]
    # the week before holds E alone
    w46 = selectors.lead_funnel(period=selectors.iso_week_period("2026-W46", tz="Europe/Berlin"))
    assert [s.reached for s in w46.steps] == [1, 1, 1, 1, 1, 1]


def test_an_empty_period_has_no_ratios(db):
    funnel = selectors.lead_funnel(period=W47)
    assert funnel.leads == 0 and funnel.overall is None
    assert all(s.conversion is None for s in funnel.steps[1:])


def test_the_funnel_costs_a_fixed_number_of_queries(history):
    with CaptureQueriesContext(connection) as queries:
        selectors.lead_funnel(period=W47)
    # furthest stage per lead (grouped), stays and their median by stage (PostgreSQL's
    # percentile_cont; elsewhere a count, then one ORDER BY ... OFFSET per timed stage)
    assert len(reads(queries)) == (2 if connection.vendor == "postgresql" else 6)
