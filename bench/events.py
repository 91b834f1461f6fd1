"""The cost of the event log on the hot path: touchpoint ingest with its event (and outbox) rows,
against the same rows written alone, in one run. Not a test: it prints figures.

    .venv/bin/python bench/events.py [--database-url postgres://postgres@127.0.0.1:5432/bench_events]
        [--leads 20000] [--ingest 2000] [--seed-database-url postgres://.../bench_seed]

It recreates its own database (the name must contain "bench"), seeds `--leads` demo leads with
seed_demo, then times, interleaved call by call so that both see the same machine load:
  (a) `touchpoint_record` on a random lead as shipped: the touchpoint, its touchpoint.recorded
      event and the real-time score update (no reaction hangs on touchpoints yet, so no outbox row);
  (b) the same with a reaction configured for touchpoint.recorded (as the SLA clocks and webhooks
      will): one outbox entry more, and the dispatcher's kick after commit (Redis broker).
Inside those very calls it times the event and outbox rows alone (every `event_record` the
services make, score.changed included) and the kick, so the share they add is measured on the
same calls: rows / (call - rows). Target: the rows add <= 30 %; (a) median <= 2 ms on a quiet
machine. A write transaction's COMMIT waits for the WAL flush (synchronous_commit): that cost is
the ingest's whatever it writes, and is in (a) and (b), not in the rows' share; (a') repeats (a)
with synchronous_commit off for the session, to show what the code itself costs.
With --seed-database-url (a database filled by bench/seed.py), also prints the size of its event
table: rows, and table + indexes on disk.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dbutil import recreate_database  # noqa: E402

REACTION = "bench.events.no_reaction"


def no_reaction(event) -> None:
    """The reaction configured for (b): the bench measures the writing, not the dispatch."""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def figures(name: str, values: list[float]) -> str:
    return (
        f"{name}: median {statistics.median(values):.3f} ms, p95 {percentile(values, 0.95):.3f} ms"
    )


def event_table_size(url: str) -> None:
    import psycopg2

    try:
        conn = psycopg2.connect(url)
    except psycopg2.OperationalError as error:
        print(f"event table of {url}: not reachable ({str(error).strip()})")
        return
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass('leads_leadevent') IS NOT NULL")
        if not cursor.fetchone()[0]:
            print(f"event table of {url}: none (seeded before the event log?)")
            return
        cursor.execute(
            "SELECT (SELECT count(*) FROM leads_lead), (SELECT count(*) FROM leads_leadevent), "
            "pg_size_pretty(pg_relation_size('leads_leadevent')), "
            "pg_size_pretty(pg_indexes_size('leads_leadevent')), "
            "pg_size_pretty(pg_total_relation_size('leads_leadevent'))"
        )
        leads, rows, table, indexes, total = cursor.fetchone()
        cursor.execute(
            "SELECT type, count(*) FROM leads_leadevent GROUP BY type ORDER BY count(*) DESC"
        )
        by_type = ", ".join(f"{t} {n:,}" for t, n in cursor.fetchall())
    conn.close()
    print(
        f"event table of the seed ({leads:,} leads): {rows:,} events, table {table}, "
        f"indexes {indexes}, total {total}\n    {by_type}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_events")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--ingest", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seed-database-url", default="")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("The benchmark measures PostgreSQL: pass a postgres:// URL.")

    recreate_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    # production settings: no query log
    os.environ.update(DEBUG="0", SECRET_KEY="bench-" + "x" * 50, ALLOWED_HOSTS="bench")
    os.environ["CELERY_BROKER_URL"] = args.broker_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignment.settings")
    import django

    django.setup()

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from alignment.celery import app as celery_app
    from leads import events, lifecycle, routing, services
    from leads import intake as intake_module
    from leads.models import EventType, Lead, OutboxEntry
    from leads.scoring import services as scoring

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", leads=args.leads, stdout=quiet)
    print(f"PostgreSQL {connection.pg_version // 10000}, {os.cpu_count()} cores")
    print(f"seeded {Lead.objects.count():,} leads in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    rng = random.Random(args.seed)
    ids = list(Lead.objects.values_list("pk", flat=True))
    kinds = ["web_visit"] * 8 + ["email_open"] * 5 + ["email_click"] * 3 + ["content_download"]
    shipped = dict(settings.OUTBOX_REACTIONS)
    with_reaction = {**shipped, EventType.TOUCHPOINT_RECORDED: [REACTION]}

    spent = {"rows": 0.0, "kick": 0.0}
    record, apply_async = events.event_record, events.outbox_dispatch_task.apply_async

    def timed_record(**kwargs):
        begin = time.perf_counter()
        try:
            return record(**kwargs)
        finally:
            spent["rows"] += time.perf_counter() - begin

    def timed_kick(*a, **kw):
        begin = time.perf_counter()
        try:
            return apply_async(*a, **kw)
        finally:
            spent["kick"] += time.perf_counter() - begin

    # every module that appends events calls the timed one
    for module in (services, lifecycle, intake_module, routing, scoring):
        module.event_record = timed_record
    events.outbox_dispatch_task.apply_async = timed_kick

    def ingest(reactions: dict) -> tuple[float, float, float]:
        settings.OUTBOX_REACTIONS = reactions
        lead = Lead.objects.get(pk=rng.choice(ids))  # loaded as a page or the API would
        spent["rows"] = spent["kick"] = 0.0
        begin = time.perf_counter()
        services.touchpoint_record(lead=lead, kind=rng.choice(kinds), system="bench")
        total = time.perf_counter() - begin
        return total * 1000, spent["rows"] * 1000, spent["kick"] * 1000

    for _ in range(100):  # warm-up: caches, the compiled model, the broker connection
        ingest(shipped)
        ingest(with_reaction)
    a, b = [], []
    for _ in range(args.ingest):
        a.append(ingest(shipped))
        b.append(ingest(with_reaction))

    def statements(reactions: dict) -> int:
        with CaptureQueriesContext(connection) as queries:
            ingest(reactions)
        return len(queries.captured_queries)

    settings.OUTBOX_REACTIONS = shipped
    print()
    print(f"{args.ingest:,} calls each, interleaved, on random leads (marketing kinds):")
    for name, runs, label in (
        ("(a)", a, "touchpoint_record as shipped (touchpoint + event + score)"),
        ("(b)", b, "with a reaction on touchpoints (+ outbox row, kick after commit)"),
    ):
        totals = [t for t, _, _ in runs]
        rows = [r for _, r, _ in runs]
        kicks = [k for _, _, k in runs]
        print(f"{name} " + figures(label, totals))
        print("    " + figures("of which the event and outbox rows", rows))
        if any(kicks):
            print("    " + figures("of which the kick (queue the dispatcher on Redis)", kicks))
        share = statistics.median(rows) / (statistics.median(totals) - statistics.median(rows))
        print(
            f"    the rows add {share:.0%} to the call without them (target <= 30 %)"
            + ("" if share <= 0.30 else "  MISSED")
        )
    print(f"statements per call: (a) {statements(shipped)}, (b) {statements(with_reaction)}")
    # the same calls without waiting for the WAL flush at COMMIT: what the code itself costs
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    unflushed = [ingest(shipped)[0] for _ in range(min(args.ingest, 500))]
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO DEFAULT")
    print("(a') " + figures("(a) with synchronous_commit off for this session", unflushed))
    median_a = statistics.median(t for t, _, _ in a)
    print(
        f"(a) median {median_a:.2f} ms (target <= 2 ms on a quiet machine)"
        + ("" if median_a <= 2 else "  (over: see the load below and the COMMIT's WAL flush)")
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        print(f"synchronous_commit {cursor.fetchone()[0]}; load average {os.getloadavg()[0]:.2f}")
    pending = OutboxEntry.objects.filter(dispatched_at=None).count()
    print(f"outbox entries written by (b), left undispatched: {pending:,}")
    celery_app.control.purge()
    if args.seed_database_url:
        print()
        event_table_size(args.seed_database_url)


if __name__ == "__main__":
    main()
