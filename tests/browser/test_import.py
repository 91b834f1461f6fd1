from pathlib import Path

import pytest

from leads.models import Lead
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser
DATA = Path(__file__).resolve().parents[1] / "leads" / "data"


def test_marketer_imports_a_csv_and_watches_it_finish(page, marketer, tmp_path):
    bad = tmp_path / "with-a-bad-row.csv"
    bad.write_text(
        (DATA / "comma.csv").read_text() + "not-an-email,Zed,Zulu,Zulu Ltd,12,DE,Google,red,1\n"
    )
    page.goto("/login/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.goto("/leads/import/")
    page.set_input_files("#id_file", str(bad))
    page.click("form button[type=submit]")
    page.wait_for_url("**/leads/import/*/")
    page.wait_for_selector("text=Done", timeout=15000)
    body = page.content()
    assert "is not a valid email address" in body
    assert page.inner_text("table tbody tr td:first-child") == "5"  # spreadsheet row number
    screenshot(page, "import-job")
    assert Lead.objects.filter(email="ann@example.com").exists()
    assert not Lead.objects.filter(company="Zulu Ltd").exists()
