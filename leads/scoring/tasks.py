import logging

from celery import shared_task
from django.db import OperationalError

from leads.models import LeadEvent
from leads.scoring import services
from leads.services import leads_qualify

logger = logging.getLogger(__name__)


def _qualify(lead_ids: list[int]) -> None:
    leads_qualify(lead_ids=lead_ids, system=services.SCORING_SYSTEM)


@shared_task(
    name="leads.scoring_rescore_run",
    bind=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def scoring_rescore_run(self, run_id: int) -> None:
    """Run or resume a full rescore; the run is claimed, so a second delivery does nothing. The
    leads that a new version qualifies become MQLs (and are routed) batch by batch."""
    services.scoring_run_execute(run_id=run_id, on_crossing=_qualify)


@shared_task(name="leads.scoring_preview", ignore_result=True)
def scoring_preview(model_id: int) -> None:
    """Count the leads a pending version would make MQLs and those whose grade it would change,
    for its page and the approval's confirmation."""
    services.scoring_model_preview_record(model_id=model_id)


def scoring_preview_queue(model_id: int) -> bool:
    """Queue the count (the pages and the API, after a propose); False when the broker is down,
    for the page to offer counting again."""
    try:
        scoring_preview.delay(model_id)
    except Exception:
        logger.warning("Could not queue the preview of scoring model %s", model_id, exc_info=True)
        return False
    return True


@shared_task(name="leads.scoring_runs_resume", ignore_result=True)
def scoring_runs_resume() -> None:
    """Re-queue rescores that nobody works on (a worker died, or the broker lost the message)."""
    for run_id in services.scoring_runs_stalled():
        logger.warning("Rescore run %s stalled; queuing it again", run_id)
        scoring_rescore_run.delay(run_id)


def activation_reaction(event: LeadEvent) -> None:
    """Outbox reaction to scoring.activated: start the activation's rescore."""
    scoring_rescore_run.delay(event.payload["rescore_run_id"])
