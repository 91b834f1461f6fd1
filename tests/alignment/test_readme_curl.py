"""The README's "Integrating your CRM" examples are run, in order, against a live server: each
curl must succeed (curl --fail-with-body), so the documented calls keep working."""

import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.cache import cache

from alignment.api_keys import api_key_create
from alignment.models import API_SCOPES
from leads.models import ScoringModel
from leads.scoring import services as scoring
from leads.scoring.models import ModelStatus
from leads.scoring.rules import spec_of

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Integrating your CRM"


def readme_examples() -> list[str]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [b for b in blocks if "curl" in b and "$API" in b]


class _Receiver(BaseHTTPRequestHandler):
    """The CRM's webhook endpoint in the examples: takes every delivery."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks"
    server.shutdown()


def test_the_section_has_examples_for_the_whole_api():
    examples = "\n".join(readme_examples())
    for path in (
        "/me/",
        "/leads/",
        "/leads/bulk/",
        "/leads/external/",
        "/leads/export/",
        "/touchpoints/",
        "/transitions/",
        "/reasons/",
        "/imports/",
        "/events/",
        "/scoring/versions/",
        "/approve/",
        "/sla/agreement/",
        "/sla/clocks/",
        "/kpis/summary/",
        "/webhooks/",
        "/assets/",
        "/suggested-content/",
        "/objections/",
        "/flags/",
        "/stories/",
        "/content-requests/",
        "Idempotency-Key",
    ):
        assert path in examples, path


@pytest.mark.django_db(transaction=True)
def test_every_curl_example_in_the_readme_works(
    live_server, admin_user, marketer, sales_manager, settings, tmp_path, receiver
):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    cache.clear()
    _, raw = api_key_create(name="README", scopes=list(API_SCOPES), as_user=admin_user)
    _, manager = api_key_create(
        name="README manager", scopes=["scoring:read", "scoring:approve"], as_user=sales_manager
    )
    # a version waiting for sign-off, for the approval example
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Spring tuning")
    draft = scoring.scoring_model_update(
        model=draft, by=marketer, spec={**spec_of(draft), "mql_total": 90}
    )
    scoring.scoring_model_propose(model=draft, by=marketer)
    script = ["set -euo pipefail", 'curl() { command curl --fail-with-body -sS "$@"; }']
    for number, block in enumerate(readme_examples(), start=1):
        script += [block, f"echo '<<example {number} ok>>'"]
    (tmp_path / "examples.sh").write_text("\n".join(script))
    env = {
        **os.environ,
        "API": f"{live_server.url}/api/v1",
        "KEY": raw,
        "MANAGER_KEY": manager,
        "HOOK_URL": receiver,
    }
    done = subprocess.run(
        ["bash", str(tmp_path / "examples.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for number in range(1, len(readme_examples()) + 1):
        assert f"<<example {number} ok>>" in done.stdout
