import pytest

from leads.models import Stage
from tests.browser.conftest import login, screenshot
from tests.factories import SourceFactory
from tests.kpis.history import new_lead, to_opportunity, utc, walk, won_path

pytestmark = pytest.mark.browser


def test_marketer_reads_the_kpis_of_a_week_with_charts_and_tables(page, marketer, rep):
    google, webinar = SourceFactory(name="Google"), SourceFactory(name="Webinar")
    created = utc(11, 16, 7)
    won_path(new_lead(created, source=google, owner=rep), 16, 4800)
    to_opportunity(new_lead(created, source=webinar), 17, 2500)
    walk(new_lead(created, source=webinar), (Stage.MQL, utc(11, 17, 8)))
    new_lead(created, source=google)
    login(page, "marketer")
    page.goto("/kpis/?period=2026-W47")
    page.wait_for_selector("h1:has-text('KPIs')")
    # the charts are drawn beside their tables
    page.wait_for_function("document.querySelectorAll('canvas[data-chart]').length > 0")
    page.wait_for_function(
        "typeof Chart !== 'undefined' && Object.keys(Chart.instances).length > 0"
    )
    funnel = page.locator("#funnel tbody tr").all_inner_texts()
    assert funnel[0].split("\t")[:2] == ["Leads", "4"]
    page.select_option("#id_source", label="Webinar")
    with page.expect_navigation():
        page.click("form.kpi-filters button[type=submit]")
    assert f"source={webinar.pk}" in page.url
    assert page.locator("#funnel tbody tr").first.inner_text().split("\t")[:2] == ["Leads", "2"]
    page.goto("/kpis/?period=2026-W47")
    page.wait_for_function("Object.keys(Chart.instances).length > 0")
    screenshot(page, "kpis-page-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/kpis/?period=2026-W47")
    page.wait_for_function("Object.keys(Chart.instances).length > 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "kpis-page-390")
