import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alignment.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks"
    server.shutdown()


def login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")


def test_admin_subscribes_a_crm_sees_the_secret_once_and_sends_a_test(
    page, admin_user, settings, receiver_url
):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    login(page, admin_user.username)
    page.goto("/webhooks/")
    screenshot(page, "webhooks-empty")
    page.goto("/webhooks/new/")
    page.fill("#id_url", "ftp://crm.example.com/hooks")
    page.check("input[name=event_types][value='lead.stage_changed']")
    page.click("button[type=submit]")
    page.wait_for_selector(".errorlist")
    assert not WebhookEndpoint.objects.exists()

    page.fill("#id_url", receiver_url)
    page.fill("#id_description", "HubSpot sync")
    page.click("button[type=submit]")
    page.wait_for_selector("text=whsec_")
    screenshot(page, "webhooks-secret")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["lead.stage_changed"]

    page.goto(f"/webhooks/{endpoint.pk}/")
    assert "whsec_" not in page.content()
    page.click("button:has-text('Send test event')")
    page.wait_for_load_state()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.event_type == "webhook.test"
    page.goto(f"/webhooks/{endpoint.pk}/")
    assert "webhook.test" in page.content()
    screenshot(page, "webhooks-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "webhooks-detail-phone")


def test_a_marketer_may_not_open_the_webhooks_pages(page, marketer):
    login(page, marketer.username)
    response = page.goto("/webhooks/")
    assert response.status == 403
