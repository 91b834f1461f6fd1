import logging

from celery import shared_task
from django.db import OperationalError

from leads.scoring import services

logger = logging.getLogger(__name__)


@shared_task(
    name="leads.scoring_rescore_run",
    bind=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def scoring_rescore_run(self, run_id: int) -> None:
    """Run or resume a full rescore; the run is claimed, so a second delivery does nothing."""
    services.scoring_run_execute(run_id=run_id)


@shared_task(name="leads.scoring_runs_resume", ignore_result=True)
def scoring_runs_resume() -> None:
    """Re-queue rescores that nobody works on (a worker died, or the broker lost the message)."""
    for run_id in services.scoring_runs_stalled():
        logger.warning("Rescore run %s stalled; queuing it again", run_id)
        scoring_rescore_run.delay(run_id)
