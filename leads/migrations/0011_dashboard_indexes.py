"""Indexes for the dashboard's pages at a million leads (bench/dashboard.py), partial so that they
hold only the rows they serve and cost nothing to writes of other leads:

- Wins (/leads/wins/): won leads newest won first, by keyset, and one owner's: a first page
  took 300 ms warm and 5.1 s cold on 1,000,000 seeded leads, 0.05-0.5 ms with them;
- sales velocity's open opportunities at a period's end, by source, campaign and owner (the
  KPI page and the goals): a bitmap scan of every opportunity's heap page before, the index
  alone after.

Built CONCURRENTLY on PostgreSQL, like 0010 (leads stay writable meanwhile), hence a non-atomic
migration and indexes that live in the database only, not in Lead.Meta.indexes.
"""

from django.db import migrations

from alignment.lib.db_indexes import concurrent_indexes

INDEXES = {
    "lead_won_at_id": "(won_at, id) WHERE stage = 'won'",
    "lead_won_owner_at_id": "(owner_id, won_at, id) WHERE stage = 'won'",
    "lead_open_opportunity": (
        "(stage_changed_at, source_id, campaign_id, owner_id, id) WHERE stage = 'opportunity'"
    ),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("leads", "0010_lead_list_indexes"),
    ]

    operations = [
        concurrent_indexes("leads_lead", INDEXES),
    ]
