"""Pipeline actions under /api/v1/: stage moves (transitions), reassignment, reason codes and
the CSV import as an async job. Every write goes through the services the pages use
(leads.lifecycle.lead_move, leads.routing.lead_assign, leads.importing.services)."""

from leads.api.pipeline import assignment, imports, moves

urlpatterns = [*moves.urlpatterns, *assignment.urlpatterns, *imports.urlpatterns]
