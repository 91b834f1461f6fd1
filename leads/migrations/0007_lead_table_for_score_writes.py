"""The lead table made for score writes (PostgreSQL).

A full rescore rewrites every lead row. With the table's pages full, only ~2% of those updates
stayed on their page (HOT), so every other one added an entry to each of the table's indexes.
fillfactor=50 leaves room on every page for a new version of each of its rows (a full rescore
updates all of them; 70 or 85 would leave room for a part only), and no score column is indexed,
so the writes stay heap-only. The setting applies to pages written from now on: the first rescore
moves the rows once, or `VACUUM FULL leads_lead` (an exclusive lock, ~1 min per 1M leads) at a
quiet hour applies it at once.

Fewer indexes to maintain, none that a query uses:
- the `varchar_pattern_ops` (`_like`) twins of the unique email and external_id indexes, which
  serve only `LIKE 'prefix%'` on the raw column; nothing queries that (conditions compare
  `lower(email)`, the search has its own trigram index). Django creates them again if a later
  migration alters either field: drop them again there.
- owner_id alone (lead_owner_stage (owner_id, stage) covers it), and the touchpoint's lead_id
  alone (touchpoint_lead_time (lead_id, occurred_at) covers it; measured on 1M leads, a rescore
  batch's per-lead aggregate took 0.055-0.071 ms through either).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FILLFACTOR = 50
# single-column indexes that a composite covers (the state drops them through db_index=False; the
# database does it by name, since an AlterField would drop and re-validate the foreign keys too)
COVERED_INDEXES = {
    "leads_lead_owner_id_1f4568d0": ("leads_lead", "owner_id"),
    "leads_touchpoint_lead_id_bf98d552": ("leads_touchpoint", "lead_id"),
}
LIKE_INDEXES = {
    "leads_lead_email_93d5b817_like": "email",
    "leads_lead_external_id_c72287bc_like": "external_id",
}


def forwards(apps, schema_editor):
    for name in COVERED_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in LIKE_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    schema_editor.execute(f"ALTER TABLE leads_lead SET (fillfactor = {FILLFACTOR})")


def backwards(apps, schema_editor):
    for name, (table, column) in COVERED_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE leads_lead RESET (fillfactor)")
    for name, column in LIKE_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON leads_lead ({column} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0006_lead_search"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="lead",
                    name="owner",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="owned_leads",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="touchpoint",
                    name="lead",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="touchpoints",
                        to="leads.lead",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        ),
    ]
