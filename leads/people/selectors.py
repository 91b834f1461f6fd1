"""Reads for the People and routing page."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Prefetch, QuerySet

from alignment.lib.business_time import Calendar, CalendarError
from alignment.lib.timezones import company_timezone, zone_or_none
from alignment.models import SALES_ROLES, User
from leads.models import AssignmentRule, PoolMember
from leads.routing import rep_open_leads
from sla.selectors import agreement_active

_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class RepRow:
    rep: User
    open_leads: int
    zone: ZoneInfo
    local_now: datetime
    hours: list[str]  # the agreement's working hours in the rep's zone, one line per run of days
    in_hours: bool | None  # None: no agreement calendar

    @property
    def full(self) -> bool:
        return self.open_leads >= self.rep.capacity


def agreement_calendar() -> Calendar | None:
    """The business calendar of the agreement in force: the working hours of every rep."""
    agreement = agreement_active()
    if agreement is None:
        return None
    try:
        return Calendar.from_json(agreement.calendar)
    except CalendarError:
        return None


def hours_in_zone(calendar: Calendar, zone: ZoneInfo, *, week_of: date) -> list[str]:
    """The calendar's weekly shifts as the clocks in `zone` show them during the week of
    `week_of` (clock changes differ between zones), days with equal hours grouped: "Mon–Fri
    03:00–11:00". A shift that ends on the next local day says so."""
    calendar_zone = ZoneInfo(calendar.timezone)
    monday = week_of - timedelta(days=week_of.weekday())
    per_day: dict[int, list[str]] = {}
    for offset, shifts in enumerate(calendar.hours):
        day = monday + timedelta(days=offset)
        for start, end in shifts:
            begin = datetime.combine(day, start, calendar_zone).astimezone(zone)
            end_day = day + timedelta(days=1) if end.hour == end.minute == 0 else day
            finish = datetime.combine(end_day, end, calendar_zone).astimezone(zone)
            text = f"{begin:%H:%M}–{finish:%H:%M}"
            if finish.date() > begin.date() and (finish.hour, finish.minute) != (0, 0):
                text += " (next day)"
            per_day.setdefault(begin.weekday(), []).append(text)
    groups: list[list] = []  # [first, last, text]
    for weekday in range(7):
        text = ", ".join(per_day.get(weekday, []))
        if groups and groups[-1][2] == text and groups[-1][1] == weekday - 1:
            groups[-1][1] = weekday
        else:
            groups.append([weekday, weekday, text])
    lines = []
    for first, last, text in groups:
        if text:
            days = _LABELS[first] if first == last else f"{_LABELS[first]}–{_LABELS[last]}"
            lines.append(f"{days} {text}")
    return lines


def sales_people() -> QuerySet[User]:
    """Everyone routing may give a lead to: active sales reps and sales managers."""
    return User.objects.filter(is_active=True, role__in=SALES_ROLES).order_by(
        "first_name", "last_name", "username"
    )


def reps_overview(*, now: datetime, calendar: Calendar | None) -> list[RepRow]:
    reps = list(sales_people())
    open_leads = rep_open_leads(rep_ids=[r.pk for r in reps])
    in_hours = calendar.is_open(now) if calendar else None
    rows = []
    hours_by_zone: dict[str, list[str]] = {}
    for rep in reps:
        zone = zone_or_none(rep.working_timezone) or company_timezone()
        key = str(zone)
        if key not in hours_by_zone:
            hours_by_zone[key] = (
                hours_in_zone(calendar, zone, week_of=now.astimezone(zone).date())
                if calendar
                else []
            )
        rows.append(
            RepRow(
                rep=rep,
                open_leads=open_leads[rep.pk],
                zone=zone,
                local_now=now.astimezone(zone),
                hours=hours_by_zone[key],
                in_hours=in_hours,
            )
        )
    return rows


def rules_overview() -> list[AssignmentRule]:
    """Every rule in order, with its pool (members and reps) in one prefetch."""
    members = PoolMember.objects.select_related("rep").order_by("-weight", "rep__username")
    return list(
        AssignmentRule.objects.order_by("position", "id")
        .prefetch_related(Prefetch("members", queryset=members))
        .annotate(member_count=Count("members"))
    )
