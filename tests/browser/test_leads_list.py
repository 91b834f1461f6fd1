import csv
import io
from pathlib import Path

import pytest

from tests.browser.conftest import login, screenshot
from tests.factories import LeadFactory, SourceFactory

pytestmark = pytest.mark.browser


def test_marketer_searches_anna_filters_by_source_and_exports_the_csv(page, marketer, rep):
    webinar, google = SourceFactory(name="Webinar"), SourceFactory(name="Google")
    anna = LeadFactory(
        first_name="Anna",
        last_name="Schmidt",
        email="anna.schmidt@test-gmbh.example",
        company="Test GmbH",
        source=webinar,
        stage="mql",
        owner=rep,
        score=72,
        grade="B",
    )
    LeadFactory(first_name="Hanna", last_name="Berg", company="=SUM(A1)", source=google)
    LeadFactory(first_name="Bob", last_name="Jones", company="Other Ltd", source=webinar)
    login(page, "marketer")  # lands on the marketing home
    page.goto("/leads/")
    page.wait_for_selector("h1:has-text('Leads')")
    page.fill("#id_q", "Anna")
    page.click("button:has-text('Show leads')")
    page.wait_for_selector("#total:has-text('2 leads')")
    assert page.locator("td.lead-name:has-text('Anna Schmidt')").count() == 1
    assert page.locator("td.lead-name:has-text('Bob Jones')").count() == 0

    page.select_option("#id_source", label="Webinar")
    page.click("button:has-text('Show leads')")
    page.wait_for_selector("#total:has-text('1 lead')")
    assert page.locator("td.lead-name").all_inner_texts() == [
        "Anna Schmidt\nanna.schmidt@test-gmbh.example"
    ]
    screenshot(page, "leads-list-search-1366")

    with page.expect_download() as download_info:
        page.click("a:has-text('Export CSV')")
    download = download_info.value
    assert download.suggested_filename.startswith("leads-")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [(r["id"], r["first_name"], r["company"], r["source"]) for r in rows] == [
        (str(anna.pk), "Anna", "Test GmbH", "webinar")
    ]

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/leads/?q=anna")
    page.wait_for_selector("#total:has-text('2 leads')")
    # nothing runs off a phone's screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "leads-list-search-390")


def test_sales_manager_assigns_ticked_leads_and_reads_what_was_refused(
    page, sales_manager, rep, other_rep
):
    free = LeadFactory(first_name="Free", last_name="Mql", stage="mql")
    taken = LeadFactory(first_name="Taken", last_name="Mql", stage="mql", owner=rep)
    login(page, "sales_manager")
    page.goto("/leads/")
    page.click("a:has-text('Unassigned MQLs')")
    page.wait_for_selector("#total:has-text('1 lead')")
    page.goto("/leads/?stage=mql")
    page.check(f"input[name=lead][value='{free.pk}']")
    page.check(f"input[name=lead][value='{taken.pk}']")
    page.select_option("#id_bulk_rep", label=str(rep))
    page.click("button:has-text('Assign')")
    page.wait_for_selector(".messages")
    messages = page.locator(".messages").inner_text()
    assert f"Assigned 1 lead to {rep}: Free Mql." in messages
    assert f"Taken Mql is already assigned to {rep}." in messages
    assert "stage=mql" in page.url
    screenshot(page, "leads-list-bulk-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "leads-list-bulk-390")
    # a new lead with an email another lead has: refused in place, with a link to that lead
    page.set_viewport_size({"width": 1366, "height": 800})
    page.click("a:has-text('New lead')")
    page.fill("#id_email", free.email.upper())
    page.click("button:has-text('Create lead')")
    page.wait_for_selector(".errorlist a")
    assert page.locator(".errorlist a").get_attribute("href") == f"/leads/{free.pk}/"
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "lead-form-duplicate-390")
