"""Pipeline and revenue created by source and by first- and last-touch campaign."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis import selectors
from leads.models import Stage, TouchpointKind
from tests.factories import CampaignFactory, SourceFactory, TouchpointFactory
from tests.kpis.history import (
    W47,
    imported_move,
    new_lead,
    reads,
    settle,
    to_opportunity,
    utc,
    walk,
)

pytestmark = pytest.mark.django_db


def _touch(lead, campaign, day):
    TouchpointFactory(
        lead=lead, campaign=campaign, kind=TouchpointKind.EMAIL_CLICK, occurred_at=utc(11, day, 12)
    )


@pytest.fixture
def history():
    google, linkedin = SourceFactory(name="Google"), SourceFactory(name="LinkedIn")
    webinar, newsletter, show, intake = (
        CampaignFactory(name=n) for n in ("Webinar Nov", "Newsletter", "Trade show", "Intake UTM")
    )
    created = utc(11, 2, 9)
    # P1: touched by the webinar, then the newsletter, an untagged visit, then (after the
    # opportunity) the trade show; opportunity in W47, won in W47
    p1 = new_lead(created, source=google)
    for campaign, day in ((webinar, 10), (newsletter, 14), (None, 15), (show, 20)):
        _touch(p1, campaign, day)
    to_opportunity(p1, 17, 1000)
    walk(p1, (Stage.WON, utc(11, 19, 9)))
    # P2: no campaign touchpoint: credited to its own campaign
    to_opportunity(new_lead(created, source=linkedin, campaign=intake), 18, 500)
    # P3: nothing at all
    to_opportunity(new_lead(created), 18, 250)
    # P4: opportunity in W46 after the trade show, the newsletter only after it, won in W47
    p4 = new_lead(created, source=google)
    _touch(p4, show, 1)
    to_opportunity(p4, 12, 2000)
    _touch(p4, newsletter, 13)
    walk(p4, (Stage.WON, utc(11, 18, 9)))
    # P5: an imported win with no opportunity before it: its touchpoints up to the win count
    p5 = new_lead(created)
    _touch(p5, newsletter, 19)
    imported_move(p5, Stage.NEW, Stage.WON, utc(11, 20, 9), deal_value=300)
    settle()


def _credits(credits):
    return [(c.name, c.deals, c.value) for c in credits]


def test_pipeline_by_source_and_touch(history):
    pipeline = selectors.pipeline_attribution(period=W47)
    assert (pipeline.deals, pipeline.value) == (3, Decimal("1750.00"))
    # the same figure as marketing's pipeline created
    assert selectors.pipeline_created(period=W47).value == pipeline.value
    assert _credits(pipeline.by_source) == [
        ("Google", 1, Decimal("1000.00")),
        ("LinkedIn", 1, Decimal("500.00")),
        ("Unknown source", 1, Decimal("250.00")),
    ]
    assert _credits(pipeline.by_first_touch) == [
        ("Webinar Nov", 1, Decimal("1000.00")),
        ("Intake UTM", 1, Decimal("500.00")),
        ("No campaign", 1, Decimal("250.00")),
    ]
    assert _credits(pipeline.by_last_touch) == [
        ("Newsletter", 1, Decimal("1000.00")),  # the trade show came after the opportunity
        ("Intake UTM", 1, Decimal("500.00")),
        ("No campaign", 1, Decimal("250.00")),
    ]


def test_revenue_credits_the_touches_before_the_deals_opportunity(history):
    revenue = selectors.revenue_attribution(period=W47)
    assert (revenue.deals, revenue.value) == (3, Decimal("3300.00"))
    assert _credits(revenue.by_source) == [
        ("Google", 2, Decimal("3000.00")),
        ("Unknown source", 1, Decimal("300.00")),
    ]
    assert _credits(revenue.by_first_touch) == [
        ("Trade show", 1, Decimal("2000.00")),
        ("Webinar Nov", 1, Decimal("1000.00")),
        ("Newsletter", 1, Decimal("300.00")),
    ]
    assert _credits(revenue.by_last_touch) == [
        ("Trade show", 1, Decimal("2000.00")),  # P4's newsletter came after its opportunity
        ("Newsletter", 2, Decimal("1300.00")),  # P1 (before its opportunity) and P5
    ]


def test_filters_and_an_empty_week(history):
    google = selectors.revenue_attribution(period=W47, source_id=SourceFactory(name="Google").pk)
    assert (google.deals, google.value) == (2, Decimal("3000.00"))
    empty = selectors.pipeline_attribution(period=selectors.iso_week_period("2026-W40", tz="UTC"))
    assert (empty.deals, empty.value, empty.by_first_touch) == (0, Decimal("0.00"), ())


def test_attribution_costs_five_queries(history):
    with CaptureQueriesContext(connection) as queries:
        selectors.pipeline_attribution(period=W47)
        selectors.revenue_attribution(period=W47)
    # by source, first touch, last touch, campaign names, source names: for each measure
    assert len(reads(queries)) == 10
