import logging

from celery import shared_task

from leads.importing import services

logger = logging.getLogger(__name__)


@shared_task(name="leads.import_job_run", ignore_result=True)
def import_job_run(job_id: int) -> None:
    """Run (or resume) one uploaded import; the service claims the job, so a second delivery
    does nothing."""
    services.import_job_run(job_id=job_id)


def import_job_queue(job_id: int) -> None:
    """Queue a job's run (the import page and the API, after commit)."""
    try:
        import_job_run.delay(job_id)
    except Exception as error:  # the broker is down: the job waits, queued, for the resume job
        logger.warning("Import job %s could not be queued (%s); beat will queue it.", job_id, error)


@shared_task(name="leads.import_jobs_resume", ignore_result=True)
def import_jobs_resume() -> None:
    """Queue again the imports nobody works on (a worker died, or the broker lost the message)."""
    for job_id in services.import_jobs_stalled():
        logger.warning("Import job %s stalled; queuing it again", job_id)
        import_job_run.delay(job_id)
