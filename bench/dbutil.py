"""What every benchmark needs before it starts: a database of its own, created afresh."""

import sys
from pathlib import Path
from urllib.parse import unquote, urlparse


def recreate_database(url: str) -> None:
    """Drop and create the benchmark database named by `url` (a SQLite file is deleted).

    Refuses a PostgreSQL database whose name does not contain "bench": never drop real data."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        Path(unquote(parsed.path)).unlink(missing_ok=True)
        return
    if not parsed.scheme.startswith("postgres"):
        sys.exit(f"Unsupported database URL {url!r}: use postgres://... or sqlite:///...")
    import psycopg2
    from psycopg2 import sql

    name = unquote(parsed.path.lstrip("/"))
    if "bench" not in name:
        sys.exit(f"Refusing to drop {name!r}: a benchmark database name must contain 'bench'.")
    connection = psycopg2.connect(
        dbname="postgres",
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password) if parsed.password else None,
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    connection.close()
