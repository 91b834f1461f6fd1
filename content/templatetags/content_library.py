"""`{% lead_suggestions lead user as suggestions %}` and `{% lead_can_share lead user as
can_share %}` (the lead page's "Suggested for this lead"), so that the leads app's view needs
nothing from content/."""

from django import template

from alignment.lib.errors import DomainError
from alignment.models import User
from content.suggestions import Suggestion, suggested_assets
from leads.models import Lead, TouchpointKind
from leads.services import touchpoint_actor_check

register = template.Library()


@register.simple_tag
def lead_suggestions(lead: Lead | None, user: User | None, limit: int = 5) -> list[Suggestion]:
    if lead is None or lead.pk is None or user is None:
        return []
    return suggested_assets(lead=lead, limit=limit)


@register.simple_tag
def lead_can_share(lead: Lead | None, user: User | None) -> bool:
    """Whether `user` may share content with this lead (log a sales touchpoint on it)."""
    if lead is None or lead.pk is None or user is None or not user.is_authenticated:
        return False
    try:
        touchpoint_actor_check(lead=lead, kind=TouchpointKind.CONTENT_SHARED, by=user)
    except DomainError:
        return False
    return True
