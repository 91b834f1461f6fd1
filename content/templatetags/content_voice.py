"""Voice of the prospect on pages other than its own, so that their views need nothing from
content/: `{% lead_objections lead user as v %}` (the lead page's card),
`{% voice_may_log lead user as may_log %}` and `{% voice_categories as categories %}` (the
queue's one-step form), `{% home_voice as hv %}` (marketing's home)."""

from dataclasses import dataclass

from django import template
from django.utils import timezone

from alignment.models import User
from content.models import Objection, ObjectionCategory
from content.voice.forms import ObjectionLogForm
from content.voice.services import may_log_objection
from kpis.selectors.goals import goals_timezone
from kpis.selectors.periods import iso_week_of, iso_week_period
from kpis.selectors.voice import CategoryRow, objection_categories, recent_objections
from leads.models import Lead

register = template.Library()

SHOWN = 20  # the lead card's objections
HOME_TOP = 5
HOME_QUOTES = 3


@dataclass(frozen=True)
class VoiceCard:
    objections: list[Objection]
    more: int  # logged beyond the ones shown
    can_log: bool
    form: ObjectionLogForm | None


@register.simple_tag
def lead_objections(lead: Lead | None, user: User | None) -> VoiceCard:
    if lead is None or lead.pk is None:
        return VoiceCard([], 0, False, None)
    qs = Objection.objects.filter(lead=lead).select_related("logged_by", "answer")
    rows = list(qs.order_by("-logged_at", "-id")[: SHOWN + 1])
    more = qs.count() - SHOWN if len(rows) > SHOWN else 0
    can_log = may_log_objection(lead=lead, user=user)
    form = ObjectionLogForm(initial={"lead": lead.pk}) if can_log else None
    return VoiceCard(rows[:SHOWN], more, can_log, form)


@register.simple_tag
def voice_may_log(lead: Lead | None, user: User | None) -> bool:
    return lead is not None and may_log_objection(lead=lead, user=user)


@register.simple_tag
def voice_categories() -> list[tuple[str, str]]:
    return list(ObjectionCategory.choices)


@dataclass(frozen=True)
class HomeVoice:
    label: str
    total: int
    categories: list[CategoryRow]
    quotes: list[Objection]


@register.simple_tag
def home_voice() -> HomeVoice:
    """This week's top categories and latest quotes (the ISO week in the agreement's zone, as
    the rest of marketing's home)."""
    now = timezone.now()
    tz = goals_timezone()
    period = iso_week_period(iso_week_of(now, tz=tz), tz=tz).until(now)
    categories = objection_categories(period=period)
    return HomeVoice(
        label=period.label,
        total=sum(r.count for r in categories),
        categories=categories[:HOME_TOP],
        quotes=recent_objections(period=period, limit=HOME_QUOTES),
    )
