"""Where the content KPIs are shown: the KPI page's tables (and their CSV), the asset page's
figures, marketing's home and the weekly report."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from content.models import Asset, AssetUseKind, ContentRequest, RequestStatus
from kpis.content_tables import content_tables
from kpis.selectors.goals import goals_timezone
from kpis.selectors.periods import iso_week_of, iso_week_period, month_period
from sla.report import services
from tests.factories import LeadFactory, RepFactory
from tests.kpis.history import W47
from tests.kpis.test_content_kpis import asset, use, week  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db

SHARED, ENGAGED = AssetUseKind.SHARED, AssetUseKind.ENGAGED


def _tables(**filters):
    return {t.key: t for t in content_tables(period=W47, **filters)}


def test_the_content_table_with_its_baseline_row(week):  # noqa: F811
    table = _tables()["content"]
    assert [h for h, _ in table.columns] == [
        "Asset",
        "Shared",
        "Leads engaged",
        "Opportunities closed",
        "Won",
        "Win rate",
        "Median days",
    ]
    assert table.rows == [
        ["Case study", 2, 3, 3, 2, 66.7, 3.0],
        ["Deck", 2, 0, 1, 0, 0.0, 3.0],
        ["No content", None, None, 2, 1, 50.0, 1.8],
    ]
    assert table.chart == 1 and not table.is_empty
    assert "4 shares by sales and 3 leads engaging" in table.note
    assert "(win rate 50%)" in table.note


def test_the_unused_table(week):  # noqa: F811
    table = _tables()["content_unused"]
    assert table.rows == [["One-pager", "—", 51]]
    assert table.note.startswith("1 of 3 sales-ready assets (33.3%)")


def test_empty_tables_say_why():
    tables = _tables()
    assert tables["content"].is_empty
    assert tables["content_unused"].is_empty
    assert tables["content_unused"].empty == "The library has no sales-ready asset yet."


def test_closes_without_any_share_still_show_the_table(week):  # noqa: F811
    table = _tables(source_id=week["google"].pk)
    assert table["content"].rows[-1] == ["No content", None, None, 0, 0, None, None]
    assert not table["content"].is_empty


def test_the_kpi_page_shows_and_exports_the_content_tables(client, marketer, week):  # noqa: F811
    tz = goals_timezone()
    label = "2026-W47"
    page = client.get("/kpis/", {"period": label})
    assert page.status_code == 302  # logged out
    client.force_login(marketer)
    html = client.get("/kpis/", {"period": label}).content.decode()
    assert 'id="content"' in html and 'id="content_unused"' in html
    csv = client.get("/kpis/", {"period": label, "export": "content"})
    assert csv.status_code == 200
    lines = csv.content.decode().splitlines()
    assert lines[0] == "Asset,Shared,Leads engaged,Opportunities closed,Won,Win rate,Median days"
    if tz == "Europe/Berlin":
        assert lines[1] == "Case study,2,3,3,2,66.7,3.0"
    assert len(lines) == 4


def _now_in_this_month():
    """A time this month and this ISO week so far (in the goals' zone)."""
    now = timezone.now()
    tz = goals_timezone()
    month = month_period(now.astimezone(ZoneInfo(tz)).strftime("%Y-%m"), tz=tz)
    week_period = iso_week_period(iso_week_of(now, tz=tz), tz=tz)
    start = max(month.start, week_period.start)
    if start > now:
        start = week_period.start
    return start + (now - start) / 2


def test_the_asset_page_figures(client, rep, marketer):
    case = asset("Bank case study", created=timezone.now() - timedelta(days=200))
    at = _now_in_this_month()
    lead = LeadFactory()
    use(case, lead, SHARED, at, by=rep)
    use(case, LeadFactory(), ENGAGED, at)
    use(case, lead, SHARED, timezone.now() - timedelta(days=60), by=rep)
    use(case, lead, SHARED, timezone.now() - timedelta(days=100), by=rep)
    done = ContentRequest.objects.create(
        title="Banking case", status=RequestStatus.DONE, asset=case
    )
    html = render_to_string("content/asset_kpis.html", {"asset": case})
    assert 'id="asset-kpis"' in html
    assert '<th scope="row">Shared by sales</th><td>1</td><td>2</td>' in html
    assert '<th scope="row">Leads engaged</th><td>1</td><td>1</td>' in html
    assert f'href="/content/requests/{done.pk}/"' in html
    assert render_to_string("content/asset_kpis.html", {"asset": None}).strip() == ""


def test_marketings_home_shows_content_this_week(client, marketer, rep):
    ready = asset("Deck", created=timezone.now() - timedelta(days=30))
    asset("Unused one", created=timezone.now() - timedelta(days=30))
    use(ready, LeadFactory(), SHARED, _now_in_this_month(), by=RepFactory())
    ContentRequest.objects.create(title="ROI calculator", vote_count=3)
    ContentRequest.objects.create(title="Planned one", vote_count=9, status=RequestStatus.PLANNED)
    client.force_login(marketer)
    html = client.get("/").content.decode()
    assert 'id="home-content"' in html
    section = html[html.index('id="home-content"') :]
    assert "Shared by sales</span><strong>1</strong>" in section
    assert '50%</strong><span class="muted">1 of 2 assets' in section
    assert "ROI calculator" in section and "Planned one" not in section
    assert 'href="/content/requests/"' in section


def test_the_weekly_report_section(week, marketer):  # noqa: F811
    ContentRequest.objects.create(title="ROI <calculator>", vote_count=2)
    figures = services.sla_report_preview(week="2026-W47", now=W47.end + timedelta(hours=8))
    content = figures["feedback"]["content"]
    if goals_timezone() == "Europe/Berlin":
        assert content["shares"] == 4
    _, _, html = services.sla_report_render(figures=figures)
    assert "Content: what sales used" in html
    assert "Most shared" in html and "Case study" in html
    assert "ROI &lt;calculator&gt;" in html
    assert 'class="' not in html[html.index("Content: what sales used") :].split("</td></tr>")[0]


def test_an_archive_without_the_feedback_figures_renders_no_content_section(week):  # noqa: F811
    figures = services.sla_report_preview(week="2026-W47", now=W47.end + timedelta(hours=8))
    del figures["feedback"]
    _, _, html = services.sla_report_render(figures=figures)
    assert "Content: what sales used" not in html
    assert Asset.objects.exists()
