"""Indexes for the API's lead list (GET /api/v1/leads/ and its CSV export).

The list is ordered by (updated_at, id) by default and pages with a cursor on that pair, so each
page is a range of an index, however deep: `WHERE updated_at <= :at AND (updated_at < :at OR
id < :id) ORDER BY updated_at DESC, id DESC LIMIT 51`. Measured on PostgreSQL 15 with 400,000
leads (EXPLAIN ANALYZE, first and a later page), before -> after:
- default list, and `updated_since`:          550 ms (sort of the table) -> 3 ms (lead_updated_id)
- `stage=mql` (a stage and the default order): 310 ms -> 3 ms (lead_stage_updated_id)
- `owner=<id>`:                                  19 ms -> 3 ms (lead_owner_updated_id)
- `owner=none`, several stages, created_since: walk lead_updated_id with a filter, 3-10 ms
`ordering=created_at` already had lead_created (an incremental sort settles the ties by id), and
`ordering=id` the primary key. `ordering=score` has no index on purpose: a rescore rewrites every
lead's score and stays heap-only only while no index holds it (0007).

The score writes do not touch updated_at, so these indexes cost a full rescore nothing; each
other change of a lead (which sets updated_at) updates three more index entries.

Like lead_search_trgm (0006) they live in the database only, not in Lead.Meta.indexes: on
PostgreSQL they are built CONCURRENTLY (leads stay writable meanwhile; about a minute for a
million leads), which Django's AddIndex cannot do on SQLite. Hence a non-atomic migration.
"""

from django.db import migrations

from alignment.lib.db_indexes import concurrent_indexes

INDEXES = {
    "lead_updated_id": "(updated_at, id)",
    "lead_stage_updated_id": "(stage, updated_at, id)",
    "lead_owner_updated_id": "(owner_id, updated_at, id)",
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("leads", "0008_tuning_run"),
    ]

    operations = [
        concurrent_indexes("leads_lead", INDEXES),
    ]
