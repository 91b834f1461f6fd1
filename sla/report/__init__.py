"""The weekly SLA report: its figures (from kpis.selectors), the archive, the exactly-once email,
and the pages that list, show and preview it."""
