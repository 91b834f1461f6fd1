"""How fast the REST API takes a CRM's traffic, against gunicorn on PostgreSQL. Not a test: it
prints figures.

    .venv/bin/python bench/api.py [--database-url postgres://postgres@127.0.0.1:5432/bench_seed_1m]
        [--requests 20] [--batch 1000] [--clients 4] [--list-requests 300] [--webhooks 500]

Uses the database as it is (seed it first with `bench/seed.py`, 1,000,000 leads by default; the
run adds its own leads and touchpoints, with emails unique to the run) and migrates it. Starts
gunicorn with 2 sync workers on localhost and drives it from this process with `--clients`
threads:

1. bulk lead upsert: `--requests` POSTs of `--batch` new leads to /api/v1/leads/bulk/, then the
   same leads again with a changed title (updates): leads per second for each;
2. touchpoint ingest: `--requests` POSTs of `--batch` marketing touchpoints on seeded leads to
   /api/v1/touchpoints/ (scored, with events): touchpoints per second;
3. the lead list: `--list-requests` GETs of /api/v1/leads/ (50 a page; the default order, a
   stage filter, an owner filter, updated_since), one client: p50 and p95;
4. webhook delivery: `--webhooks` events delivered to a local receiver through the delivery
   service: deliveries per second;

and in the same run the references: `COPY` of the same lead and touchpoint rows into the same
tables (in a transaction that is rolled back), and a minimal Django JSON view served by the same
gunicorn (the framework's ceiling: p50/p95 and requests per second). Targets (issue 10): at least
5,000 leads/s and 10,000 touchpoints/s in bulk, list p95 at most 50 ms.
"""

import argparse
import csv
import datetime as dt
import http.client
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_LEADS_PER_SECOND = 5_000
TARGET_TOUCHPOINTS_PER_SECOND = 10_000
TARGET_LIST_P95_MS = 50.0
MARKETING_KINDS = ("email_open", "email_click", "web_visit", "form_submit", "content_download")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        # the throttle would stop a benchmark; a worker is not started: the outbox keeps the
        # reactions for later, as it does when the workers lag behind
        "API_THROTTLE_RATE": "100000000/min",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
        "CACHE_URL": "redis://127.0.0.1:6379/12",
        "LOG_LEVEL": "WARNING",
        "WEBHOOKS_ALLOW_PRIVATE": "1",
    }


class Client:
    """One HTTP/1.1 connection per call (gunicorn's sync workers close it after each answer)."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body=None) -> tuple[int, bytes, float]:
        data = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request(method, path, body=data, headers=self.headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        return response.status, payload, time.perf_counter() - started


def wait_until_up(client: Client, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            sys.exit("gunicorn exited before answering; see its output above.")
        try:
            status, _, _ = client.call("GET", "/bench/ping/")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("gunicorn did not answer within a minute.")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_parallel(client: Client, clients: int, calls: list[tuple[str, str, object]]):
    """Sends `calls` from `clients` threads; returns (wall seconds, per-call seconds)."""

    def one(call):
        status, payload, seconds = client.call(*call)
        if status >= 300:
            raise SystemExit(f"{call[0]} {call[1]} answered {status}: {payload[:500]!r}")
        errors = json.loads(payload).get("counts", {}).get("error", 0)
        if errors:
            raise SystemExit(f"{call[0]} {call[1]}: {errors} items refused: {payload[:800]!r}")
        return seconds

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        durations = list(pool.map(one, calls))
    return time.perf_counter() - started, durations


def lead_items(run: str, start: int, count: int) -> list[dict]:
    return [
        {
            "external_id": f"bench-{run}-{n}",
            "email": f"bench.{run}.{n}@api-bench.example.com",
            "first_name": "Bench",
            "last_name": f"Lead {n}",
            "company": f"Company {n % 997}",
            "title": "Head of Operations",
            "country": "Germany",
            "industry": "Software",
            "company_size": 50 + n % 500,
        }
        for n in range(start, start + count)
    ]


def touchpoint_items(lead_ids: list[int], count: int, rng: random.Random) -> list[dict]:
    """`count` touchpoints on leads drawn from `lead_ids` (a request's own share of the seed)."""
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "lead_id": rng.choice(lead_ids),
            "kind": rng.choice(MARKETING_KINDS),
            "occurred_at": (now - dt.timedelta(minutes=rng.randint(1, 600))).isoformat(),
        }
        for _ in range(count)
    ]


def shares(lead_ids: list[int], parts: int) -> list[list[int]]:
    """The seeded leads split into `parts` disjoint shares: concurrent requests then lock
    different leads, as a CRM's batches of activity on many leads do (requests on the same leads
    wait for each other's row locks, which measures one lock, not the API)."""
    return [lead_ids[i::parts] for i in range(parts)]


# --- the COPY reference ---------------------------------------------------------------------


def copy_rows(model, rows: list[dict]) -> float:
    """COPY `rows` (field name -> value; the rest from the fields' defaults) into the model's
    own table in a transaction that is rolled back: the floor of writing the same rows."""
    from django.db import connection, transaction

    fields = [
        f for f in model._meta.concrete_fields if not (f.primary_key and f.name not in rows[0])
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        values = []
        for field in fields:
            if field.attname in row:
                value = row[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            else:
                value = field.get_default()
            value = field.get_db_prep_save(value, connection)
            if value is None:
                values.append("\\N")
            elif hasattr(value, "dumps"):  # a JSON adapter
                values.append(value.dumps(value.adapted))
            elif isinstance(value, dict | list):
                values.append(json.dumps(value))
            else:
                values.append(value)
        writer.writerow(values)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {model._meta.db_table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            buffer.seek(0)
            cursor.cursor.copy_expert(sql, buffer)
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


# --- a webhook receiver ---------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Receiver.lock:
            _Receiver.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_seed_1m"
    )
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--list-requests", type=int, default=300)
    parser.add_argument("--webhooks", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("bench/api.py measures PostgreSQL: give a postgres:// --database-url.")

    env = server_env(args.database_url)
    python = sys.executable
    print(f"database: {args.database_url}")
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    import django

    django.setup()
    from alignment.api_keys import api_key_create
    from alignment.models import API_SCOPES
    from leads.models import Lead, Touchpoint

    total_leads = Lead.objects.count()
    print(f"leads in the database: {total_leads:,}")
    _, key = api_key_create(name=f"bench {uuid.uuid4().hex[:6]}", scopes=list(API_SCOPES))
    rng = random.Random(7)
    # the touchpoints fall on seeded leads (not on the leads earlier runs added): the newest
    # 200,000 of the first million, shuffled
    lead_ids = list(
        Lead.objects.filter(id__lte=1_000_000)
        .order_by("-id")
        .values_list("id", flat=True)[:200_000]
    )
    rng.shuffle(lead_ids)

    port = free_port()
    gunicorn = subprocess.Popen(
        [
            str(Path(python).with_name("gunicorn")),
            "alignment.wsgi",
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    client = Client(port, key)
    try:
        wait_until_up(client, gunicorn)
        report(args, client, lead_ids, rng, Lead, Touchpoint)
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)


def report(args, client, lead_ids, rng, Lead, Touchpoint) -> None:  # noqa: N803 (models)
    from django.db import connection

    run = uuid.uuid4().hex[:8]
    n, size = args.requests, args.batch
    figures: dict[str, float] = {}

    # the framework's ceiling: a minimal JSON view on the same gunicorn
    ping = [client.call("GET", "/bench/ping/")[2] for _ in range(args.list_requests)]
    wall, _ = run_parallel(client, args.clients, [("GET", "/bench/ping/", None)] * 400)
    figures["ping_p50"], figures["ping_p95"] = percentile(ping, 50), percentile(ping, 95)
    print(
        f"\nminimal JSON view: p50 {figures['ping_p50'] * 1000:.1f} ms, "
        f"p95 {figures['ping_p95'] * 1000:.1f} ms, {400 / wall:,.0f} requests/s "
        f"({args.clients} clients)"
    )

    # each worker's first bulk requests pay for cold caches (connections, the compiled scoring
    # model, imports): warm every worker before measuring
    warm = [lead_items(f"{run}w", i * 50, 50) for i in range(args.workers * 3)]
    run_parallel(
        client, args.clients, [("POST", "/api/v1/leads/bulk/", {"leads": b}) for b in warm]
    )
    run_parallel(
        client,
        args.clients,
        [
            ("POST", "/api/v1/touchpoints/", {"touchpoints": touchpoint_items(lead_ids, 50, rng)})
            for _ in range(args.workers * 3)
        ],
    )

    # 1. bulk lead upsert: new leads, then the same leads changed
    batches = [lead_items(run, i * size, size) for i in range(n)]
    wall, per = run_parallel(
        client, args.clients, [("POST", "/api/v1/leads/bulk/", {"leads": b}) for b in batches]
    )
    figures["create"] = n * size / wall
    print(
        f"\nbulk upsert, new leads: {n} x {size} in {wall:.2f} s = {figures['create']:,.0f} "
        f"leads/s (per request p50 {percentile(per, 50) * 1000:.0f} ms, "
        f"p95 {percentile(per, 95) * 1000:.0f} ms)"
    )
    for batch in batches:
        for item in batch:
            item["title"] = "VP Operations"
    wall, per = run_parallel(
        client, args.clients, [("POST", "/api/v1/leads/bulk/", {"leads": b}) for b in batches]
    )
    figures["update"] = n * size / wall
    print(
        f"bulk upsert, changed leads: {n} x {size} in {wall:.2f} s = {figures['update']:,.0f} "
        f"leads/s (per request p50 {percentile(per, 50) * 1000:.0f} ms)"
    )
    copy_leads = [
        {**item, "email": f"copy.{item['email']}", "external_id": f"copy-{item['external_id']}"}
        for batch in batches
        for item in batch
    ]
    copy_seconds = copy_rows(Lead, copy_leads)
    figures["copy_leads"] = len(copy_leads) / copy_seconds
    print(
        f"reference, COPY of the same {len(copy_leads):,} lead rows: {copy_seconds:.2f} s = "
        f"{figures['copy_leads']:,.0f} rows/s; the API reaches "
        f"{figures['create'] / figures['copy_leads']:.2f} of it "
        f"(target {TARGET_LEADS_PER_SECOND:,} leads/s: "
        f"{'met' if figures['create'] >= TARGET_LEADS_PER_SECOND else 'NOT met'})"
    )

    # 2. touchpoint ingest
    tp_batches = [touchpoint_items(share, size, rng) for share in shares(lead_ids, n)]
    wall, per = run_parallel(
        client,
        args.clients,
        [("POST", "/api/v1/touchpoints/", {"touchpoints": b}) for b in tp_batches],
    )
    figures["touch"] = n * size / wall
    print(
        f"\ntouchpoint ingest: {n} x {size} in {wall:.2f} s = {figures['touch']:,.0f} "
        f"touchpoints/s (per request p50 {percentile(per, 50) * 1000:.0f} ms, "
        f"p95 {percentile(per, 95) * 1000:.0f} ms)"
    )
    now = dt.datetime.now(dt.UTC)
    copy_touch = [
        {
            "lead_id": item["lead_id"],
            "kind": item["kind"],
            "occurred_at": dt.datetime.fromisoformat(item["occurred_at"]),
            "created_at": now,
            "metadata": {},
        }
        for batch in tp_batches
        for item in batch
    ]
    copy_seconds = copy_rows(Touchpoint, copy_touch)
    figures["copy_touch"] = len(copy_touch) / copy_seconds
    print(
        f"reference, COPY of the same {len(copy_touch):,} touchpoint rows: {copy_seconds:.2f} s "
        f"= {figures['copy_touch']:,.0f} rows/s; the API reaches "
        f"{figures['touch'] / figures['copy_touch']:.2f} of it "
        f"(target {TARGET_TOUCHPOINTS_PER_SECOND:,} touchpoints/s: "
        f"{'met' if figures['touch'] >= TARGET_TOUCHPOINTS_PER_SECOND else 'NOT met'})"
    )

    # 3. the lead list, one client
    with connection.cursor() as cursor:
        cursor.execute("SELECT owner_id FROM leads_lead WHERE owner_id IS NOT NULL LIMIT 1")
        owner = (cursor.fetchone() or [None])[0]
    since = (now - dt.timedelta(days=3)).isoformat().replace("+00:00", "Z")
    lists = {
        "default order": "/api/v1/leads/?page_size=50",
        "stage=mql": "/api/v1/leads/?page_size=50&stage=mql",
        "owner": f"/api/v1/leads/?page_size=50&owner={owner}",
        "updated_since": f"/api/v1/leads/?page_size=50&updated_since={since}",
    }
    everything = []
    for label, path in lists.items():
        times = []
        for _ in range(max(1, args.list_requests // len(lists))):
            status, payload, seconds = client.call("GET", path)
            if status != 200:
                raise SystemExit(f"GET {path} answered {status}: {payload[:300]!r}")
            times.append(seconds)
        everything += times
        print(
            f"list, {label}: p50 {percentile(times, 50) * 1000:.1f} ms, "
            f"p95 {percentile(times, 95) * 1000:.1f} ms"
        )
    figures["list_p50"], figures["list_p95"] = (
        percentile(everything, 50),
        percentile(everything, 95),
    )
    print(
        f"list, all: p50 {figures['list_p50'] * 1000:.1f} ms, p95 {figures['list_p95'] * 1000:.1f}"
        f" ms = {figures['list_p95'] / figures['ping_p95']:.1f} x the minimal view's p95 "
        f"(target p95 <= {TARGET_LIST_P95_MS:.0f} ms: "
        f"{'met' if figures['list_p95'] * 1000 <= TARGET_LIST_P95_MS else 'NOT met'})"
    )

    # 4. webhook delivery to a local receiver
    webhooks(args, run)
    print(f"\nrun id {run}: its leads have external ids bench-{run}-N")


def webhooks(args, run: str) -> None:
    from bench import api_webhooks

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        figures = api_webhooks.deliver(
            url=f"http://127.0.0.1:{receiver.server_port}/hook", count=args.webhooks, run=run
        )
    finally:
        receiver.shutdown()
    print(
        f"\nwebhooks: {figures['events']} events -> {figures['deliveries']} deliveries made by "
        f"the outbox reaction in {figures['reaction_seconds']:.2f} s "
        f"({figures['deliveries'] / figures['reaction_seconds']:,.0f}/s); signed and sent to a "
        f"local receiver by {figures['senders']} senders in {figures['send_seconds']:.2f} s = "
        f"{figures['delivered'] / figures['send_seconds']:,.0f} deliveries/s "
        f"({figures['delivered']} delivered, {figures['failed']} not; the receiver got "
        f"{_Receiver.received})"
    )


if __name__ == "__main__":
    main()
