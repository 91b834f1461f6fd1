"""Indexes that live in the database only (not in a model's Meta.indexes), built CONCURRENTLY on
PostgreSQL so that a table of a million rows stays writable while they are built. A migration
that uses this must be non-atomic (`atomic = False`): CREATE INDEX CONCURRENTLY cannot run in a
transaction."""

from django.db import migrations


def concurrent_indexes(table: str, indexes: dict[str, str]) -> migrations.RunPython:
    """A reversible RunPython creating `indexes` ({name: "(columns)"}) on `table`."""

    def create(apps, schema_editor):
        postgres = schema_editor.connection.vendor == "postgresql"
        for name, columns in indexes.items():
            if postgres:
                # a build that failed half-way leaves an invalid index of this name behind
                schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                schema_editor.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} {columns}")
            else:
                schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {columns}")

    def drop(apps, schema_editor):
        concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
        for name in indexes:
            schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {name}")

    return migrations.RunPython(create, drop, elidable=False)
