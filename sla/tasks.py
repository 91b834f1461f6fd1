"""The sla app's Celery tasks, in one module for autodiscovery."""

import logging

from celery import shared_task

from sla.clocks.flagging import clocks_flag

logger = logging.getLogger(__name__)


@shared_task(name="sla.flag_breaches", ignore_result=True)
def flag_breaches_task() -> None:
    """Beat, every minute: warn, breach and escalate the clocks whose time has come."""
    result = clocks_flag()
    if result.warned or result.breached or result.reassigned:
        logger.info("SLA flagging: %s", result.as_text())
