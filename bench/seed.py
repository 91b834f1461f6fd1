"""How fast the demo generator fills PostgreSQL. Not a test: it prints figures.

    .venv/bin/python bench/seed.py [--leads 1000000] [--touchpoints-per-lead 10] [--seed 42]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_seed]
        [--bulk-load [--keep-indexes]]

Drops and re-creates the database (its name must contain "bench"), migrates it, runs the same
service as `manage.py seed_demo`, and prints rows per second for leads, stage changes and
touchpoints, and the wall time. By default it measures what the command does: plain COPY.
--bulk-load drops the foreign keys during the load and builds the secondary indexes of the empty
tables at the end (--keep-indexes: foreign keys only), to see what that buys.
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
    parser.add_argument("--bulk-load", action="store_true")
    parser.add_argument("--keep-indexes", action="store_true")
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

    call_command("migrate", verbosity=0)
    prepared = time.perf_counter()
    summary = demo.demo_seed(
        leads=args.leads,
        seed=args.seed,
        touchpoints_per_lead=args.touchpoints_per_lead,
        progress=True,
        bulk_load=args.bulk_load,
        rebuild_indexes=not args.keep_indexes,
    )
    finished = time.perf_counter()

    t = summary.timings
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database())), "
            "(SELECT count(*) FROM leads_touchpoint)"
        )
        size, touchpoints_in_db = cursor.fetchone()
    cores = os.cpu_count()
    print()
    print(f"PostgreSQL {connection.pg_version // 10000}, {cores} cores, seed {args.seed}")
    if summary.bulk_load:
        rebuilt = "no" if args.keep_indexes else "yes"
        print(f"bulk load: foreign keys dropped and re-added; indexes rebuilt: {rebuilt}")
    else:
        print("plain COPY: foreign keys checked at commit, indexes maintained row by row")
    print(f"  leads        {rate(summary.leads, t.get('leads', 0))}")
    print(f"  stage changes{rate(summary.stage_changes, t.get('history', 0))}  (with assignments)")
    print(f"  touchpoints  {rate(summary.touchpoints, t.get('touchpoints', 0))}")
    print(
        "  phases       "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary.timings.items())
    )
    print(f"  stages       {summary.stages}")
    assert touchpoints_in_db == summary.touchpoints, (touchpoints_in_db, summary.touchpoints)
    seconds = finished - prepared
    rows = summary.leads + summary.stage_changes + summary.assignments + summary.touchpoints
    print(f"  overall      {rate(rows, seconds)}  (all tables, wall time)")
    print(f"seed wall time {seconds:.1f} s; with create + migrate {finished - started:.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database size {size}; peak memory of this process {peak:,.0f} MB")


if __name__ == "__main__":
    main()
