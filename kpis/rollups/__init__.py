"""KPI rollups kept from the lead event log: `kpis.models.StageStay` (see kpis.rollups.replay for
the rules, kpis.rollups.services for how the rows are kept in step)."""
