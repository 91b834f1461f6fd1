import logging
import smtplib

from celery import shared_task

from leads.announcements import announcement_email, announcement_for_won
from leads.importing.tasks import import_job_run  # noqa: F401  (registers leads.import_job_run)
from leads.models import Lead
from leads.scoring.tasks import scoring_rescore_run, scoring_runs_resume  # noqa: F401
from leads.scoring.tuning_tasks import scoring_tune  # noqa: F401

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def won_announce(self, lead_id: int) -> None:
    lead = Lead.objects.select_related("owner", "source").filter(pk=lead_id).first()
    if lead is None:
        return
    announcement = announcement_for_won(lead=lead)
    if announcement is not None:
        announcement_email(announcement=announcement)
