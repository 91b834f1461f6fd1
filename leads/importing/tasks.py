from celery import shared_task

from leads.importing import services


@shared_task(name="leads.import_job_run")
def import_job_run(job_id: int) -> None:
    """Run one uploaded import; the service claims the job, so a second delivery does nothing."""
    services.import_job_run(job_id=job_id)
