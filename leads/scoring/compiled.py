"""The compiled scoring versions, cached per process, and the active one.

Versions are frozen once proposed; the cache key includes updated_at so an edited draft
recompiles. The real-time path remembers the active version for at most a minute (see
`active_for`)."""

import time
from datetime import datetime

from leads.models import Lead
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.rules import CompiledModel, compile_spec, spec_of

_compiled: dict[tuple[int, datetime], CompiledModel] = {}


def compiled_model(model: ScoringModel) -> CompiledModel:
    key = (model.pk, model.updated_at)
    found = _compiled.get(key)
    if found is None:
        if len(_compiled) > 32:
            _compiled.clear()
        found = compile_spec(spec_of(model), model_id=model.pk, name=model.name)
        _compiled[key] = found
    return found


def compiled_by_id(pk: int, updated_at: datetime | None = None) -> CompiledModel | None:
    if updated_at is not None and (pk, updated_at) in _compiled:
        return _compiled[(pk, updated_at)]
    row = ScoringModel.objects.filter(pk=pk).first()
    return compiled_model(row) if row else None


def scoring_model_active() -> CompiledModel | None:
    """The active version, compiled (one small query; the compiled rules are cached)."""
    row = ScoringModel.objects.filter(status=ModelStatus.ACTIVE).values_list("pk", "updated_at")
    row = row.first()
    return compiled_by_id(*row) if row else None


# The version this process last found active, and when (monotonic seconds).
_active_hint: tuple[CompiledModel, float] | None = None
ACTIVE_HINT_SECONDS = 60.0


def active_for(locked: Lead) -> CompiledModel | None:
    """The version to score a locked lead with, saving the lookup on the hot path.

    The remembered version is trusted only for a lead that it scored itself: such a lead has not
    been reached yet by the rescore of any newer version (the rescore writes scored_with, and we
    hold the row, so it either passed before us or comes after us and recomputes). Any other
    lead, and any hint older than a minute, looks the active version up again."""
    global _active_hint
    hint = _active_hint
    if (
        hint is not None
        and hint[0].id == locked.scored_with_id
        and time.monotonic() - hint[1] < ACTIVE_HINT_SECONDS
    ):
        return hint[0]
    model = scoring_model_active()
    _active_hint = (model, time.monotonic()) if model is not None else None
    return model
