"""Reads for the tuning page."""

from leads.scoring.models import ModelOrigin, ScoringModel


def tuning_versions(*, limit: int = 6) -> list[ScoringModel]:
    """The latest versions fine-tuning produced, newest first (one query)."""
    return list(
        ScoringModel.objects.filter(origin=ModelOrigin.TUNING)
        .select_related("created_by", "based_on")
        .order_by("-id")[:limit]
    )
