import logging

from celery import shared_task
from kombu.exceptions import OperationalError

from alignment.webhooks.delivery import deliveries_due, deliveries_prune, delivery_attempt
from alignment.webhooks.models import AttemptTrigger

logger = logging.getLogger(__name__)


@shared_task(name="webhooks.deliver", ignore_result=True)
def webhook_deliver_task(delivery_id: int, trigger: str = AttemptTrigger.AUTO) -> None:
    """Attempt one delivery (queued after the commit that created or resent it); a delivery
    that is gone, done, not yet due or held by another sender is left alone."""
    delivery_attempt(delivery_id=delivery_id, trigger=trigger)


@shared_task(name="webhooks.retry_due", ignore_result=True)
def webhooks_retry_due_task() -> None:
    """Queue every delivery whose retry is due (and those whose first kick was lost); sends
    them here if the broker will not take them."""
    for delivery_id in deliveries_due():
        try:
            webhook_deliver_task.apply_async(args=[delivery_id], retry=False)
        except OperationalError as error:
            logger.warning("Webhooks: could not queue delivery %s (%s)", delivery_id, error)
            delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.prune", ignore_result=True)
def webhooks_prune_task() -> None:
    """Forget deliveries finished more than 30 days ago (the delivery log's horizon)."""
    deliveries_prune()
