import logging

from celery import shared_task

from alignment.lib.errors import DomainError
from alignment.models import User
from leads.scoring.tuning import DEFAULT_HOLDOUT, DEFAULT_SEED, OUTCOME_WON, scoring_tune_recorded

logger = logging.getLogger(__name__)


@shared_task(name="leads.scoring_tune", ignore_result=True)
def scoring_tune(
    outcome: str = OUTCOME_WON,
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = DEFAULT_SEED,
    exclude_attributes: list[str] | None = None,
    user_id: int | None = None,
) -> None:
    """Learn a version from outcomes and propose it (weekly, or started from the tuning page).

    A run that cannot propose (too few outcomes, nothing changed, another run in progress) says
    why on the tuning page and is not retried: the same data would give the same answer. Running it
    twice does no harm: an identical proposal is not created again."""
    by = None
    if user_id is not None:
        by = User.objects.filter(pk=user_id, is_active=True).first()
        if by is None:
            return
    try:
        result = scoring_tune_recorded(
            outcome=outcome,
            holdout=holdout,
            seed=seed,
            exclude_attributes=exclude_attributes or (),
            by=by,
        )
    except DomainError as error:
        logger.warning("Scoring fine-tuning proposed nothing: %s", error.message)
        return
    logger.info("Scoring fine-tuning: %s", result.message)
