"""Reads of the alignment agreement: the version in force, the history, what changed between two."""

from django.db.models import Prefetch, QuerySet

from alignment.signoff import VersionStatus
from sla.models import Agreement, AgreementApproval, AgreementEvent


def agreement_active() -> Agreement | None:
    """The agreement in force (a fresh install has one), with its scoring model."""
    return (
        Agreement.objects.filter(status=VersionStatus.ACTIVE)
        .select_related("scoring_model")
        .first()
    )


def agreement_history() -> QuerySet[Agreement]:
    """Every version, newest first, with its approvals (and approvers) and its creator."""
    return Agreement.objects.select_related(
        "scoring_model", "created_by", "based_on", "diff_base"
    ).prefetch_related(
        Prefetch("approvals", queryset=AgreementApproval.objects.select_related("by"))
    )


def agreement_events(*, agreement: Agreement) -> QuerySet[AgreementEvent]:
    """What happened to one version, oldest first."""
    return AgreementEvent.objects.filter(agreement=agreement).select_related("by")
