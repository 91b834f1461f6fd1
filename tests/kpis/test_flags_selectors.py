"""Lead flags' figures against hand-computed numbers, and the weekly report's section."""

from datetime import UTC, datetime

import pytest

from alignment.models import Role
from content.models import FlagOutcome, FlagStatus, LeadFlag
from kpis.selectors.flags import flag_counts, flags_report, open_flags
from kpis.selectors.periods import iso_week_period
from sla.report import services
from tests.factories import LeadFactory, RepFactory, UserFactory

pytestmark = pytest.mark.django_db

# Wednesday of 2026-W48 (Mon 23 Nov - Mon 30 Nov, UTC), noon
AT = datetime(2026, 11, 25, 12, tzinfo=UTC)
WEEK = iso_week_period("2026-W48", tz="UTC")


def day(d, hour=0):
    return datetime(2026, 11, d, hour, tzinfo=UTC)


@pytest.fixture
def flags(db):
    """A: open since 20 Nov 12:00. B: 23 Nov 06:00, fixed 12 h later. C: 24 Nov 00:00, declined
    24 h later. D: open since 24 Nov 12:00. E: 10 Nov, merged on 26 Nov (after AT, 384 h).
    F: raised 30 Nov 01:00, after the week and after AT."""
    rick = RepFactory(username="rick", first_name="Rick", last_name="Rep")
    mia = UserFactory(username="mia", role=Role.MARKETER)

    def flag(name, raised, *, resolved=None, outcome=""):
        return LeadFlag.objects.create(
            lead=LeadFactory(first_name=name, last_name="Lead", owner=rick),
            reason="wrong_data",
            comment=f"flag {name}",
            raised_by=rick,
            raised_at=raised,
            status=FlagStatus.RESOLVED if resolved else FlagStatus.OPEN,
            outcome=outcome,
            resolution="why" if resolved else "",
            resolved_by=mia if resolved else None,
            resolved_at=resolved,
        )

    return {
        "A": flag("A", day(20, 12)),
        "B": flag("B", day(23, 6), resolved=day(23, 18), outcome=FlagOutcome.FIXED),
        "C": flag("C", day(24), resolved=day(25), outcome=FlagOutcome.DECLINED),
        "D": flag("D", day(24, 12)),
        "E": flag("E", day(10), resolved=day(26), outcome=FlagOutcome.MERGED),
        "F": flag("F", day(30, 1)),
    }


def test_the_flags_open_at_a_moment_oldest_first_with_their_age(flags):
    found = open_flags(at=AT)
    assert [o.flag.pk for o in found] == [flags["E"].pk, flags["A"].pk, flags["D"].pk]
    assert [o.age_days for o in found] == [15, 5, 1]
    assert [o.age_hours for o in found] == [372.0, 120.0, 24.0]
    assert [o.flag.pk for o in open_flags(at=AT, limit=2)] == [flags["E"].pk, flags["A"].pk]
    # after E's resolution and F's raising
    later = open_flags(at=day(30, 2))
    assert [o.flag.pk for o in later] == [flags["A"].pk, flags["D"].pk, flags["F"].pk]


def test_raised_and_resolved_in_the_week_by_outcome_and_the_median_time(flags):
    counts = flag_counts(period=WEEK)
    assert counts["raised"] == 3  # B, C, D (A and E before, F after)
    assert counts["resolved"] == 3  # B, C, E
    assert {o["outcome"]: o["count"] for o in counts["outcomes"]} == {
        "fixed": 1,
        "rerouted": 0,
        "merged": 1,
        "explained": 0,
        "declined": 1,
    }
    assert counts["median_hours_to_resolve"] == 24.0  # of 12, 24 and 384


def test_a_quiet_week_has_zeros_and_no_median(flags):
    counts = flag_counts(period=iso_week_period("2026-W40", tz="UTC"))
    assert counts["raised"] == 0 and counts["resolved"] == 0
    assert counts["median_hours_to_resolve"] is None
    assert all(o["count"] == 0 for o in counts["outcomes"])


def test_the_report_figures_are_json_ready(flags):
    report = flags_report(period=WEEK, at=AT)
    assert report["open"] == 3 and report["oldest_age_days"] == 15
    assert report["raised"] == 3 and report["resolved"] == 3
    assert [o["outcome"] for o in report["resolved_outcomes"]] == ["fixed", "merged", "declined"]
    assert report["oldest"][0] == {
        "flag_id": flags["E"].pk,
        "lead_id": flags["E"].lead_id,
        "lead": "E Lead",
        "reason": "wrong_data",
        "reason_label": "Wrong data",
        "age_days": 15,
        "flagger": "Rick Rep",
        "url": f"/leads/{flags['E'].lead_id}/#flag-{flags['E'].pk}",
    }
    assert [o["lead"] for o in report["oldest"]] == ["E Lead", "A Lead", "D Lead"]
    assert report["list_url"] == "/content/flags/"


def test_no_flag_at_all(db):
    report = flags_report(period=WEEK, at=AT)
    assert report["open"] == 0 and report["oldest_age_days"] is None and report["oldest"] == []


def test_the_weekly_report_shows_the_open_flags(flags):
    figures = services.sla_report_preview(week="2026-W48", now=day(29, 20))
    assert figures["feedback"]["flags"]["open"] == 2  # A and D (E resolved 26 Nov), F not yet
    _, text, html = services.sla_report_render(figures=figures)
    section = html.split("Open lead flags")[1].split("<h2")[0]
    assert "A Lead" in section and "D Lead" in section and "Rick Rep" in section
    assert "/content/flags/" in section
    assert "Data fixed 1 · Duplicate merged 1 · Not a problem 1" in section
    # the plain-text part of the email says the same
    plain = text.split("OPEN LEAD FLAGS")[1].split("\n\n")[0]
    assert "Open now: 2" in plain and "A Lead:" in plain and "D Lead:" in plain


def test_an_archived_report_without_feedback_renders_no_flags_section(flags):
    figures = services.sla_report_preview(week="2026-W48", now=day(29, 20))
    del figures["feedback"]
    _, text, html = services.sla_report_render(figures=figures)
    assert "Open lead flags" not in html
    assert "OPEN LEAD FLAGS" not in text and "TOP OBJECTIONS" not in text
