"""How fast the demo generator fills PostgreSQL. Not a test: it prints figures.

    .venv/bin/python bench/seed.py [--leads 1000000] [--touchpoints-per-lead 10] [--seed 42]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_seed]
        [--plain | --keep-indexes] [--no-score]

Drops and re-creates the database (its name must contain "bench"), migrates it, runs the same
service as `manage.py seed_demo`, then scores the leads as the command does, and prints the time
of every phase, rows per second per table (events included), the total, and the size of the
event table. On the fresh database the seed takes the bulk load by itself, as the command does:
foreign keys dropped during the load, secondary indexes of the empty tables built at the end.
--plain measures plain COPY instead (foreign keys checked at commit, indexes maintained row by
row), --keep-indexes the bulk load without rebuilding indexes (foreign keys only).
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dbutil import recreate_database  # noqa: E402


def rate(rows: int, seconds: float) -> str:
    return (
        f"{rows:>12,} rows in {seconds:7.1f} s = {rows / seconds if seconds else 0:>10,.0f} rows/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--touchpoints-per-lead", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_seed")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--plain", action="store_true", help="plain COPY, no bulk load")
    mode.add_argument("--keep-indexes", action="store_true", help="bulk load, indexes kept")
    parser.add_argument("--no-score", action="store_true", help="skip the scoring run")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("The benchmark measures PostgreSQL: pass a postgres:// URL.")

    started = time.perf_counter()
    recreate_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignment.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from leads import demo
    from leads.scoring.services import (
        leads_qualified_not_mql,
        scoring_model_active,
    )

    call_command("migrate", verbosity=0)
    prepared = time.perf_counter()
    summary = demo.demo_seed(
        leads=args.leads,
        seed=args.seed,
        touchpoints_per_lead=args.touchpoints_per_lead,
        progress=True,
        # None: the command's own choice (the bulk load, on this empty database)
        bulk_load=False if args.plain else None,
        rebuild_indexes=not args.keep_indexes,
        # as seed_demo: the scoring run (inside the bulk load, before the lead indexes)
        score=not args.no_score,
    )
    seeded = time.perf_counter()
    scored = seeded if summary.scored else None
    finished = time.perf_counter()

    t = summary.timings
    w = summary.write_seconds
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database())), "
            "(SELECT count(*) FROM leads_touchpoint), (SELECT count(*) FROM leads_leadevent), "
            "pg_size_pretty(pg_total_relation_size('leads_leadevent')), "
            "pg_size_pretty(pg_relation_size('leads_leadevent')), "
            "pg_size_pretty(pg_indexes_size('leads_leadevent'))"
        )
        size, touchpoints_in_db, events_in_db, event_total, event_heap, event_indexes = (
            cursor.fetchone()
        )
        cursor.execute(
            "SELECT type, count(*) FROM leads_leadevent GROUP BY type ORDER BY count(*) DESC"
        )
        by_type = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM leads_outboxentry")
        outbox = cursor.fetchone()[0]
    cores = os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print()
    print(f"PostgreSQL {connection.pg_version // 10000}, {cores} cores (load {load} at the end)")
    print(
        f"seed {args.seed}, {summary.leads:,} leads, {args.touchpoints_per_lead} touches per lead"
    )
    if summary.bulk_load:
        rebuilt = "no" if args.keep_indexes else "yes"
        print(f"bulk load: foreign keys dropped and re-added; indexes rebuilt: {rebuilt}")
    else:
        print("plain COPY: foreign keys checked at commit, indexes maintained row by row")
    print("phases (each writing phase includes the events of its rows):")
    for name, seconds in t.items():
        print(f"  {name:<12} {seconds:7.1f} s")
    print(f"  {'seed total':<12} {summary.seconds:7.1f} s")
    if scored is not None:
        print(f"  scored {summary.scored:,} leads with {summary.scored_with} (phase 'score')")
        print(f"  {'seed_demo':<12} {scored - prepared:7.1f} s  (seed + score, wall time)")
    print("written (time inside the phases, COPY or bulk_create):")
    rows = {
        "leads_lead": summary.leads,
        "leads_stagechange": summary.stage_changes,
        "leads_assignment": summary.assignments,
        "leads_touchpoint": summary.touchpoints,
        "leads_leadevent": summary.events,
    }
    for table, count in rows.items():
        print(f"  {table:<18} {rate(count, w.get(table, 0))}")
    print(f"  {'all tables':<18} {rate(sum(rows.values()), seeded - prepared)}  (seed wall time)")
    print(f"event table: {events_in_db:,} rows, {event_total} with indexes", end="")
    print(f" ({event_heap} table, {event_indexes} indexes); outbox entries {outbox:,}")
    print("  " + ", ".join(f"{kind} {count:,}" for kind, count in by_type))
    print(f"  stages     {summary.stages}")
    if scored is not None:
        model = scoring_model_active()
        print(f"  qualified but short of MQL after scoring: {leads_qualified_not_mql(model=model)}")
    assert touchpoints_in_db == summary.touchpoints, (touchpoints_in_db, summary.touchpoints)
    assert events_in_db == summary.events, (events_in_db, summary.events)
    print(f"seed wall time {seeded - prepared:.1f} s; with create + migrate and scoring", end="")
    print(f" {finished - started:.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database size {size}; peak memory of this process {peak:,.0f} MB")


if __name__ == "__main__":
    main()
