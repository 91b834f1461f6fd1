"""The stage stays of one lead, replayed from its events: a pure function, no database.

Events are taken in time order (occurred_at, then id: seeded and imported history is not written
in time order). `lead.created` opens the lead's creation row (stage "lead"); every
`lead.stage_changed` closes the stay the lead is in (its exit: where it went, the move's reason)
and opens one in the stage it moved to, with the move's deal value. A win carries the latest
entries into MQL and opportunity before it (the cycle and the attribution cut-off), and an
opportunity or a win the campaigns of the first and last campaign touchpoint at or before its
cut-off, from the touches given.
"""

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

CREATED = "lead.created"
STAGE_CHANGED = "lead.stage_changed"
LEAD_ROW = "lead"
# the funnel's stages after the lead itself, in order: a creation row's `furthest` is the rank
# (1-5) of the furthest one the lead entered, 0 for none
FUNNEL_STAGES = ("mql", "sal", "sql", "opportunity", "won")
_RANK = {stage: rank for rank, stage in enumerate(FUNNEL_STAGES, start=1)}
# the stays that carry attribution
CREDITED = ("opportunity", "won")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Touch:
    occurred_at: datetime
    id: int
    campaign_id: int


@dataclass(slots=True)
class Stay:
    stage: str
    entered_at: datetime
    from_stage: str = ""
    furthest: int = 0
    left_at: datetime | None = None
    exit_to: str = ""
    exit_reason: str = ""
    deal_value: Decimal | None = None
    mql_at: datetime | None = None
    opened_at: datetime | None = None
    first_campaign_id: int | None = None
    last_campaign_id: int | None = None


def _deal_value(raw: Any) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        return Decimal(str(raw)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def _credit(stay: Stay, touches: Sequence[Touch]) -> None:
    """First and last campaign touch at or before the stay's cut-off (touches in time order)."""
    cutoff = stay.opened_at or stay.entered_at
    upto = bisect_right([t.occurred_at for t in touches], cutoff)
    if upto:
        stay.first_campaign_id = touches[0].campaign_id
        stay.last_campaign_id = touches[upto - 1].campaign_id


def replay(
    events: Iterable[Event], touches: Sequence[Touch] = ()
) -> tuple[datetime | None, list[Stay]]:
    """(when the lead was created, its stays in time order) from its events."""
    created_at = None
    stays: list[Stay] = []
    current: Stay | None = None
    last_mql = last_opportunity = None
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        if event.type == CREATED:
            if created_at is None:
                created_at = event.occurred_at
                stays.append(Stay(stage=LEAD_ROW, entered_at=event.occurred_at))
            continue
        if event.type != STAGE_CHANGED:
            continue
        payload = event.payload if isinstance(event.payload, dict) else {}
        to, at = payload.get("to") or "", event.occurred_at
        if not to:
            continue
        if current is not None:
            current.left_at, current.exit_to = at, to
            current.exit_reason = payload.get("reason") or ""
        current = Stay(
            stage=to,
            entered_at=at,
            from_stage=payload.get("from") or "",
            deal_value=_deal_value(payload.get("deal_value")),
        )
        if to == "mql":
            last_mql = at
        elif to == "opportunity":
            last_opportunity = at
        elif to == "won":
            current.mql_at, current.opened_at = last_mql, last_opportunity
        if to in CREDITED:
            _credit(current, touches)
        stays.append(current)
    if stays and stays[0].stage == LEAD_ROW:
        stays[0].furthest = max((_RANK.get(s.stage, 0) for s in stays), default=0)
    return created_at, stays
