import logging

from celery import shared_task

from alignment.lib.errors import DomainError
from alignment.models import User
from leads.scoring.tuning import (
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_RULES,
    DEFAULT_SEED,
    OUTCOME_WON,
    scoring_tune_recorded,
)

logger = logging.getLogger(__name__)


@shared_task(name="leads.scoring_tune", ignore_result=True)
def scoring_tune(
    outcome: str = OUTCOME_WON,
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = DEFAULT_SEED,
    exclude_attributes: list[str] | None = None,
    user_id: int | None = None,
    include_attributes: list[str] | None = None,
    max_rules: int = DEFAULT_MAX_RULES,
    mqls_per_month: int | None = None,
    min_precision: float | None = None,
) -> None:
    """Learn a version from outcomes and propose it (weekly, or started from the tuning page).

    A run that cannot propose (too few outcomes, nothing changed, another run in progress) says
    why on the tuning page and is not retried: the same data would give the same answer. Running it
    twice does no harm: an identical proposal is not created again. The weekly run (no person)
    proposes only a version clearly better than the active one; a person's run proposes what it
    learned, with the verdict at the top of the proposal."""
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
            include_attributes=include_attributes or (),
            max_rules=max_rules,
            mqls_per_month=mqls_per_month,
            min_precision=min_precision,
            by=by,
            propose_unsafe=by is not None,
        )
    except DomainError as error:
        logger.warning("Scoring fine-tuning proposed nothing: %s", error.message)
        return
    logger.info("Scoring fine-tuning: %s", result.message)
