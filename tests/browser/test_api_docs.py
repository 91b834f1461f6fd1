from urllib.parse import urlparse

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def test_the_interactive_docs_list_every_operation_from_the_app_itself(page, live_server):
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).netloc))
    page.goto("/api/v1/docs/")
    page.wait_for_selector(".opblock-summary", timeout=20_000)
    operations = page.locator(".opblock-summary").count()
    assert operations >= 40
    assert "Bulk upsert leads" in page.content()
    # Swagger UI, its CSS and the schema all come from this server: nothing from a CDN
    assert hosts == {urlparse(live_server.url).netloc}
    screenshot(page, "api-docs")
