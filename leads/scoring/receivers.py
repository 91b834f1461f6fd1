"""Scoring hangs on the pipeline's events; connected in LeadsConfig.ready(). The signals are sent
inside the transaction that made the change, so the score commits or rolls back with it."""

from django.dispatch import receiver

from leads import signals
from leads.scoring import services


@receiver(signals.touchpoint_recorded, dispatch_uid="scoring_touchpoint_recorded")
def score_touchpoint(sender, touchpoint, lead, **kwargs) -> None:
    services.lead_score_touchpoint(lead=lead, touchpoint=touchpoint)


@receiver(signals.lead_became_mql, dispatch_uid="scoring_lead_became_mql")
def snapshot_mql(sender, lead, at, **kwargs) -> None:
    services.score_snapshot_mql(lead=lead, at=at)
