"""Sales velocity and cycle length by source, on a hand-built week."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis import selectors
from leads.models import Stage
from tests.factories import SourceFactory
from tests.kpis.history import (
    W47,
    W48,
    imported_move,
    new_lead,
    reads,
    settle,
    to_opportunity,
    utc,
    walk,
    won_path,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    google = SourceFactory(name="Google")
    linkedin = SourceFactory(name="LinkedIn")
    created = utc(11, 2, 9)
    # won in W47: 4 days from MQL (A) and 2 days (G)
    won_path(new_lead(created, source=google), 16, 1000)
    won_path(new_lead(created, source=google), 17, 3000, hours=12)
    # open at the end of W47: H (still open) and L (won only in W48)
    to_opportunity(new_lead(created, source=google), 19, 800)
    late = to_opportunity(new_lead(created, source=google), 18, 900)
    walk(late, (Stage.WON, utc(11, 24, 9)))
    # LinkedIn: I lost as an opportunity; J lost from SAL (not a lost deal); K open since W46
    lost = to_opportunity(new_lead(created, source=linkedin), 18, 2000)
    walk(lost, (Stage.LOST, utc(11, 19, 9), {"reason": "price"}))
    walk(
        new_lead(created, source=linkedin),
        (Stage.MQL, utc(11, 16, 8)),
        (Stage.SAL, utc(11, 16, 9)),
        (Stage.LOST, utc(11, 17, 9), {"reason": "no_decision"}),
    )
    to_opportunity(new_lead(created, source=linkedin), 10, 400)
    # no source: an imported win straight from "new", no MQL before it, so no cycle
    imported_move(new_lead(created), Stage.NEW, Stage.WON, utc(11, 20, 9), deal_value=700)
    settle()
    return {"google": google, "linkedin": linkedin}


def _row(r):
    return (
        r.source,
        r.open_opportunities,
        r.won,
        r.lost,
        r.won_value,
        r.win_rate,
        r.average_deal,
        r.average_cycle_days,
        r.velocity_per_day,
    )


def test_velocity_by_source_from_its_factors(history):
    velocity = selectors.sales_velocity(period=W47)
    assert [_row(r) for r in velocity.rows] == [
        # 2 open x 100% x 2,000 / 3 days
        ("Google", 2, 2, 0, Decimal("4000.00"), 100.0, Decimal("2000.00"), 3.0, Decimal("1333.33")),
        ("Unknown source", 0, 1, 0, Decimal("700.00"), 100.0, Decimal("700.00"), None, None),
        ("LinkedIn", 1, 0, 1, Decimal("0.00"), 0.0, None, None, None),
    ]
    # 3 open x 75% x 1,566.67 / 3 days
    assert _row(velocity.total) == (
        "All sources",
        3,
        3,
        1,
        Decimal("4700.00"),
        75.0,
        Decimal("1566.67"),
        3.0,
        Decimal("1175.00"),
    )
    assert velocity.total.cycles == 2  # the imported win has no MQL to count from


def test_the_next_week_and_a_source_filter(history):
    w48 = selectors.sales_velocity(period=W48)
    # L won in W48 after 6 days 1 hour from its MQL; H and K still open
    assert _row(w48.total)[:4] == ("All sources", 2, 1, 0)
    assert w48.total.average_cycle_days == 6.0
    linkedin = selectors.sales_velocity(period=W47, source_id=history["linkedin"].pk)
    assert [r.source for r in linkedin.rows] == ["LinkedIn"]
    assert linkedin.total.open_opportunities == 1


def test_velocity_costs_four_queries(history):
    with CaptureQueriesContext(connection) as queries:
        selectors.sales_velocity(period=W47)
    # still open, closed out later, closed in the period, the sources' names
    assert len(reads(queries)) == 4
