"""`{% lead_sla_clocks lead as clocks %}` (the lead page): the lead's SLA clocks, newest first,
so that the leads app's view needs nothing from sla/."""

from dataclasses import dataclass

from django import template

from leads.models import Lead
from sla.clocks.models import ClockStatus, SlaClock

register = template.Library()

# the lead page shows the clocks of the last few assignments
SHOWN = 6


@dataclass(frozen=True)
class ClockLine:
    clock: SlaClock
    taken: str


def business_duration(seconds: int | None) -> str:
    """Business time in words: "2 h 10 min", "45 min", "0 min"."""
    if seconds is None:
        return ""
    minutes = int(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


@register.simple_tag
def lead_sla_clocks(lead: Lead | None) -> list[ClockLine]:
    if lead is None or lead.pk is None:
        return []
    clocks = (
        SlaClock.objects.filter(lead=lead).select_related("owner").order_by("-started_at", "kind")
    )
    return [
        ClockLine(
            clock=c,
            taken=business_duration(c.business_seconds)
            if c.status != ClockStatus.CANCELLED
            else "",
        )
        for c in clocks[:SHOWN]
    ]
