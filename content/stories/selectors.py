"""Reading win and loss stories for the pages: the closes still waiting for their story."""

from django.db.models import F, QuerySet

from alignment.models import User
from content.stories.services import CLOSE_STAGES
from leads.models import StageChange


def stories_untold(*, owner: User) -> QuerySet[StageChange]:
    """The closes of `owner`'s leads that still are won or lost and have no story yet, newest
    first: each lead's current close (its latest move, which is the one into its stage)."""
    return (
        StageChange.objects.filter(
            lead__owner=owner,
            lead__stage__in=CLOSE_STAGES,
            to_stage=F("lead__stage"),
            at=F("lead__stage_changed_at"),
            story__isnull=True,
        )
        .select_related("lead")
        .order_by("-at", "-id")
    )
