"""Lead search on PostgreSQL: one trigram index over what the list's search looks in.

The indexed expression is leads.selectors.LeadSearchText, written out: PostgreSQL uses an
expression index only for the very same expression, so the two change together. Nothing happens
on SQLite (a laptop's few thousand leads are scanned).

CREATE EXTENSION needs a superuser, or on PostgreSQL 13 and later the CREATE privilege on the
database (pg_trgm is a trusted extension). The index is built CONCURRENTLY, so leads can still be
written while it builds (40 to 100 s for a million leads on two busy cores, with the ANALYZE);
hence a non-atomic migration.
"""

from django.db import migrations

SEARCH_EXPRESSION = (
    "lower(first_name || ' ' || last_name || chr(10) || coalesce(email, '') || chr(10) || company)"
)
CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # a build that failed half-way leaves an invalid index of this name behind: start afresh
    "DROP INDEX CONCURRENTLY IF EXISTS lead_search_trgm",
    f"CREATE INDEX CONCURRENTLY lead_search_trgm ON leads_lead USING gin (({SEARCH_EXPRESSION}) gin_trgm_ops)",
    # The search walks the list newest first when PostgreSQL expects many matches; with the
    # default 100 sampled values a name on 1% of the leads goes unseen a third of the time.
    "ALTER INDEX lead_search_trgm ALTER COLUMN 1 SET STATISTICS 500",
    # statistics of the new expression now, not at the next autoanalyze (which rows trigger)
    "ANALYZE leads_lead",
]
DROP = ["DROP INDEX CONCURRENTLY IF EXISTS lead_search_trgm"]


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement, params=None)


def drop_search_index(apps, schema_editor):
    # the extension stays: other database objects may use it, and it costs nothing unused
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("leads", "0005_lead_events"),
    ]

    operations = [
        migrations.RunPython(create_search_index, drop_search_index, elidable=False),
    ]
