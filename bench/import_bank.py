"""Benchmark the CSV import on the UCI Bank Marketing file (41,188 rows).

Drops and creates the benchmark database, migrates it, imports the file with the shipped mapping
(docs/examples/bank-marketing.toml) and prints the wall time and rows per second; then imports the
same file again, prints the time of that no-change re-import and checks it created and updated
nothing.

    .venv/bin/python bench/import_bank.py [--database-url postgres://postgres@127.0.0.1:5432/bench_import]

The database named in the URL is dropped: never point this at a database you care about.
"""

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.dbutil import recreate_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_import"
DEFAULT_CSV = REPO.parent / "shared" / "data" / "bank-additional-full.csv"
MAPPING = REPO / "docs" / "examples" / "bank-marketing.toml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--csv", default=str(DEFAULT_CSV), help="the bank-additional-full.csv file")
    args = parser.parse_args()
    csv_path = Path(args.csv)
    if not csv_path.is_file():
        sys.exit(f"{csv_path} is missing: the UCI Bank Marketing data lives in ../shared/data/.")

    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "alignment.settings"
    # measured as in production: without DEBUG's in-memory log of every query
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from leads.importing.mapping import mapping_read
    from leads.importing.services import leads_import
    from leads.models import Lead, Stage

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"migrate: {time.perf_counter() - started:.1f} s")
    mapping = mapping_read(MAPPING)

    started = time.perf_counter()
    first = leads_import(file=csv_path, by=None, mapping=mapping)
    elapsed = time.perf_counter() - started
    print(
        f"import: {first.processed_rows:,} rows in {elapsed:.1f} s "
        f"({first.processed_rows / elapsed:,.0f} rows/s): {first.created:,} created, "
        f"{first.updated:,} updated, {first.unchanged:,} unchanged, {first.bad_rows:,} bad; "
        f"{Lead.objects.filter(stage=Stage.WON).count():,} won"
    )

    started = time.perf_counter()
    second = leads_import(file=csv_path, by=None, mapping=mapping)
    elapsed = time.perf_counter() - started
    print(
        f"re-import: {second.processed_rows:,} rows in {elapsed:.1f} s "
        f"({second.processed_rows / elapsed:,.0f} rows/s): {second.created:,} created, "
        f"{second.updated:,} updated, {second.unchanged:,} unchanged"
    )
    if second.created or second.updated:
        print("FAILED: the re-import of the same file changed leads")
        return 1
    print("re-import changed nothing: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
