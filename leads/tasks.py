import logging
import smtplib

from celery import shared_task

from leads.announcements import announcement_email, announcement_for_won
from leads.models import Lead

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
