"""Data for the win and loss stories' tests (no tests here): closed deals written as lead_move
writes them (the lead's stage and stamp, its StageChange), at chosen times."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from content.models import Asset
from leads.models import Reason, Stage, StageChange
from tests.factories import LeadFactory


def close(*, outcome=Stage.WON, owner=None, at=None, reason=None, **fields):
    """A lead moved from opportunity to won or lost at `at`; returns its StageChange."""
    at = at or timezone.now() - dt.timedelta(hours=1)
    stamp = {"won_at": at} if outcome == Stage.WON else {"lost_at": at}
    lead = LeadFactory(
        stage=outcome,
        owner=owner,
        stage_changed_at=at,
        deal_value=Decimal("10000"),
        **stamp,
        **fields,
    )
    return StageChange.objects.create(
        lead=lead,
        from_stage=Stage.OPPORTUNITY,
        to_stage=outcome,
        at=at,
        by=owner,
        reason=Reason.objects.get(kind="lost", code=reason) if reason else None,
        deal_value=lead.deal_value if outcome == Stage.WON else None,
    )


def asset(title="Bank case study", *, sales_ready=True):
    return Asset.objects.create(
        title=title,
        kind="case_study",
        funnel_stage="decision",
        url=f"https://example.com/{title.lower().replace(' ', '-')}",
        sales_ready=sales_ready,
    )
