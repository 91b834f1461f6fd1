"""Celery jobs of the KPIs."""

from celery import shared_task

from kpis.rollups.services import stays_rebuild


@shared_task(name="kpis.rebuild_rollups", ignore_result=True)
def rebuild_rollups_task() -> None:
    """Nightly safety net: the stage stays rewritten from the event log, which also takes in
    history written without reactions (an import's past outcomes)."""
    stays_rebuild()
