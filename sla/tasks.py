"""The sla app's Celery tasks, in one module for autodiscovery."""

import logging

from celery import shared_task
from django.utils import timezone

from sla.clocks.flagging import clocks_flag
from sla.report.services import sla_report_due_week, sla_report_send

logger = logging.getLogger(__name__)


@shared_task(name="sla.flag_breaches", ignore_result=True)
def flag_breaches_task() -> None:
    """Beat, every minute: warn, breach and escalate the clocks whose time has come."""
    result = clocks_flag()
    if result.warned or result.breached or result.reassigned:
        logger.info("SLA flagging: %s", result.as_text())


@shared_task(name="sla.weekly_report", ignore_result=True)
def weekly_report_task() -> None:
    """Beat, hourly: from Monday 08:00 in the agreement's zone, the previous week's report to
    each recipient once (a delivery already sent is skipped; a failed one is retried)."""
    week = sla_report_due_week(now=timezone.now())
    if week is None:
        return
    result = sla_report_send(week=week)
    if result.sent or result.failed:
        logger.info("SLA report: %s", result.as_text())
