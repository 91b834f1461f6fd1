"""A fine-tuning run as people and jobs start it: queued from the tuning page, run by the worker
or the command, one at a time, its state recorded for the page (`status`)."""

from collections.abc import Iterable
from typing import Any

from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from leads.scoring.tuning import data, thresholds
from leads.scoring.tuning.data import TuningError
from leads.scoring.tuning.services import (
    DEFAULT_BINS,
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_RULES,
    DEFAULT_SEED,
    TUNING_SYSTEM,
    TuningResult,
    check_options,
    scoring_tune,
)
from leads.scoring.tuning.status import tuning_lock, tuning_status_record, tuning_unlock


def scoring_tune_recorded(**options) -> TuningResult:
    """scoring_tune, with its state kept for the tuning page; one run at a time."""
    by = options.get("by")
    who = str(by) if by else options.get("system", TUNING_SYSTEM)
    if not tuning_lock():
        raise TuningError("Another tuning run is in progress; try again when it has finished.")
    try:
        tuning_status_record(state="running", message="Learning from outcomes.", by=who)
        try:
            result = scoring_tune(**options)
        except DomainError as error:
            tuning_status_record(state="failed", message=error.message, by=who)
            raise
        except Exception as error:
            tuning_status_record(
                state="failed",
                message=f"The run stopped on an unexpected error ({error.__class__.__name__}).",
                by=who,
            )
            raise
        tuning_status_record(
            state=result.status,
            message=result.message,
            by=who,
            model_id=result.model.pk if result.model else None,
            summary=result.report.get("summary", ""),
        )
        return result
    finally:
        tuning_unlock()


def scoring_tune_queue(
    *,
    by: User,
    outcome: str = data.OUTCOME_WON,
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = DEFAULT_SEED,
    exclude_attributes: Iterable[str] = (),
    include_attributes: Iterable[str] = (),
    max_rules: int = DEFAULT_MAX_RULES,
    mqls_per_month: int | None = None,
    min_precision: float | None = None,
) -> dict[str, Any]:
    """Check a person's tuning request and mark it queued on the tuning page; returns the keyword
    arguments for the `leads.scoring_tune` task, which the caller queues."""
    require(by, Action.SCORING_PROPOSE)
    exclude = sorted({name.strip() for name in exclude_attributes if name and name.strip()})
    include = sorted({name.strip() for name in include_attributes if name and name.strip()})
    check_options(outcome, holdout, seed, DEFAULT_BINS)
    thresholds.check_goal(max_rules, mqls_per_month, min_precision)
    options = {
        "outcome": outcome,
        "holdout": holdout,
        "seed": seed,
        "exclude_attributes": exclude,
        "include_attributes": include,
        "max_rules": max_rules,
        "mqls_per_month": mqls_per_month,
        "min_precision": min_precision,
    }
    tuning_status_record(
        state="queued", message="Waiting for a worker.", by=str(by), options=options
    )
    return {**options, "user_id": by.pk}
