"""Business time: adding and measuring working hours under an agreement's calendar.

The rules, in the order a reader meets them:

- Hours are wall-clock hours in the calendar's zone: "Mon 09:00–17:00" in Europe/Berlin means what
  the clocks in Berlin show, in winter and in summer. Everything going in must be aware; everything
  coming out is UTC.
- A public holiday of the country (and subdivision, from the `holidays` package) or a company day off
  closes the whole local date. Holiday names are the package's English ones, whatever the server's
  locale.
- On a day the clocks change a shift holds what the wall clock gives it: a Sunday shift 00:00–05:00
  in America/New_York holds 4 hours on the spring-forward night and 6 on the fall-back night.
- A shift boundary the clock skips (02:30 on a spring-forward night) is the moment the clock jumps
  (03:00 new time): 02:30–04:00 holds one hour that night and 02:00–02:30 none.
- A boundary the clock shows twice (01:30 on a fall-back night) is its first occurrence: 01:30–03:00
  holds 2.5 hours that night, and 00:00–01:30 ends at the first 01:30.
- An end of "24:00" is midnight at the end of the day; it is stored as time(0), which cannot be
  mistaken for a start since a shift must end after it starts.
- Open time is half-open, [start, end) of each shift. `add` that runs out exactly at a shift's end
  returns that end, not the next shift's start: that is when the time was used up.
- `add(start, timedelta(0))` is `start` (in UTC), even at night: a clock of zero hours is due at once.
- Looking forward for open time gives up with CalendarError after 3 years without any, so a calendar
  whose every open day is closed cannot loop forever.
"""

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from alignment.lib.errors import DomainError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_KEYS = {"timezone", "hours", "country", "subdivision", "closed_days"}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DAY = timedelta(days=1)
_HORIZON_DAYS = 3 * 366
COMPANY_DAY_OFF = "Company day off"

Shift = tuple[time, time]

# shared: copy it before changing it (a model field's default must be a callable returning a copy)
DEFAULT_CALENDAR: dict = {
    "timezone": "Europe/Berlin",
    "hours": {day: [] if day in ("sat", "sun") else [["09:00", "17:00"]] for day in WEEKDAYS},
    "country": "DE",
    "subdivision": "",
    "closed_days": [],
}


class CalendarError(DomainError):
    """A business calendar is malformed, or has no open time where some is needed."""


@dataclass(frozen=True)
class Calendar:
    """When an agreement's clocks run: weekly shifts in a time zone, minus holidays and days off."""

    timezone: str
    hours: tuple[tuple[Shift, ...], ...]  # 7 entries, Monday first
    country: str = ""
    subdivision: str = ""
    closed_days: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if len(self.hours) != 7:
            raise CalendarError(
                "Working hours need an entry for each of the 7 weekdays.", field="calendar.hours"
            )
        for key, label, shifts in zip(WEEKDAYS, _LABELS, self.hours, strict=True):
            _check_shifts(shifts, label, f"calendar.hours.{key}")
        if not any(self.hours):
            # a clock under such a calendar could never end
            raise CalendarError(
                "The calendar needs at least one open hour in the week.", field="calendar.hours"
            )
        _check_region(self.country, self.subdivision)
        for day in self.closed_days:
            if not isinstance(day, date) or isinstance(day, datetime):
                raise CalendarError(f"Day off {day!r} is not a date.", field="calendar.closed_days")

    @classmethod
    def from_json(cls, data: dict) -> "Calendar":
        """The calendar stored as `data` (see as_json); CalendarError names the field at fault."""
        if not isinstance(data, dict):
            raise CalendarError("A calendar is a JSON object.", field="calendar")
        if unknown := sorted(set(data) - _KEYS):
            raise CalendarError(
                f"Unknown calendar setting: {', '.join(unknown)}.", field="calendar"
            )
        zone_name = data.get("timezone")
        if not isinstance(zone_name, str) or not zone_name.strip():
            raise CalendarError(
                "Choose a time zone, such as Europe/Berlin.", field="calendar.timezone"
            )
        hours = data.get("hours") or {}
        if not isinstance(hours, dict):
            raise CalendarError("Working hours are given per weekday.", field="calendar.hours")
        if unknown := sorted(set(hours) - set(WEEKDAYS)):
            raise CalendarError(
                f"Unknown weekday {', '.join(map(str, unknown))} (use mon … sun).",
                field="calendar.hours",
            )
        country = data.get("country") or ""
        subdivision = data.get("subdivision") or ""
        if not isinstance(country, str):
            raise CalendarError("The country is a code such as DE or US.", field="calendar.country")
        if not isinstance(subdivision, str):
            raise CalendarError(
                "The region is a code such as BY or CA.", field="calendar.subdivision"
            )
        country = country.strip().upper()
        return cls(
            timezone=zone_name.strip(),
            hours=tuple(_parse_shifts(hours.get(key), f"calendar.hours.{key}") for key in WEEKDAYS),
            country=country,
            subdivision=_spelled_as_listed(country, subdivision.strip()),
            closed_days=_parse_days(data.get("closed_days")),
        )

    def as_json(self) -> dict:
        return {
            "timezone": self.timezone,
            "hours": {
                key: [[_text(start), _text(end, end=True)] for start, end in shifts]
                for key, shifts in zip(WEEKDAYS, self.hours, strict=True)
            },
            "country": self.country,
            "subdivision": self.subdivision,
            "closed_days": sorted(day.isoformat() for day in self.closed_days),
        }

    def is_holiday(self, day: date) -> str | None:
        """The public holiday's name, "Company day off", or None when `day` is an ordinary day."""
        if self.country:
            name = _public_holidays(self.country, self.subdivision, day.year).get(day)
            if name:
                return name
        return COMPANY_DAY_OFF if day in self.closed_days else None

    def is_open(self, at: datetime) -> bool:
        _require_aware(at, "at")
        day = at.astimezone(_zone(self.timezone)).date()
        return any(start <= at < end for start, end in self._day(day))

    def next_open(self, at: datetime) -> datetime:
        """`at` (in UTC) when the calendar is open then, else the start of the next shift."""
        _require_aware(at, "at")
        return next(self._open_since(at))[0]

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of business time has passed since `start`."""
        _require_aware(start, "start")
        if duration < timedelta(0):
            raise ValueError("Business time cannot be negative.")
        if not duration:
            return start.astimezone(UTC)
        left = duration
        for begin, end in self._open_since(start):
            if left <= end - begin:
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable: _open_since never ends without an until")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end); nothing when end is not after start."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        total = timedelta(0)
        if end <= start:
            return total
        for begin, finish in self._open_since(start, until=end):
            if begin >= end:
                break
            total += min(finish, end) - begin
        return total

    def describe(self) -> str:
        """One line for people: "Mon–Fri 09:00–17:00 Europe/Berlin, public holidays of DE-BY"."""
        groups: list[list] = []  # [first weekday, last weekday, shifts] of runs of equal days
        for weekday, shifts in enumerate(self.hours):
            if groups and groups[-1][2] == shifts:
                groups[-1][1] = weekday
            else:
                groups.append([weekday, weekday, shifts])
        parts = []
        for first, last, shifts in groups:
            if shifts:
                days = _LABELS[first] if first == last else f"{_LABELS[first]}–{_LABELS[last]}"
                times = " and ".join(f"{_text(s)}–{_text(e, end=True)}" for s, e in shifts)
                parts.append(f"{days} {times}")
        text = f"{', '.join(parts)} {self.timezone}"
        if self.country:
            region = f"{self.country}-{self.subdivision}" if self.subdivision else self.country
            text += f", public holidays of {region}"
        if count := len(self.closed_days):
            text += f", {count} company day{'s' if count > 1 else ''} off"
        return text

    def _day(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals (UTC) of local date `day`, in order."""
        if self.is_holiday(day) is not None:
            return
        zone = _zone(self.timezone)
        for start, end in self.hours[day.weekday()]:
            begin = _utc(day, start, zone)
            finish = _utc(day + _DAY, end, zone) if end == time(0) else _utc(day, end, zone)
            if begin < finish:  # a shift wholly inside a skipped hour holds nothing
                yield begin, finish

    def _open_since(
        self, since: datetime, until: datetime | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals ending after `since`, the first clipped to start there; day by day up to
        `until`'s local date, or without end (but at most 3 years without open time)."""
        zone = _zone(self.timezone)
        since = since.astimezone(UTC)
        day = since.astimezone(zone).date()
        last_day = until.astimezone(zone).date() if until else None
        idle_days = 0
        while last_day is None or day <= last_day:
            idle_days += 1
            for begin, end in self._day(day):
                if end > since:
                    idle_days = 0
                    yield max(begin, since), end
            if last_day is None and idle_days > _HORIZON_DAYS:
                raise CalendarError(
                    f"The calendar has no open time in the 3 years after {since:%Y-%m-%d}.",
                    field="calendar",
                )
            day += _DAY


def _utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0: a wall time the clock shows twice means its first occurrence
    local = datetime.combine(day, at, tzinfo=zone)
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return utc
    # The clock skipped this wall time, so the boundary is the moment it jumped. Read with the old
    # offset (fold=0) the time lands after the jump, with the new one (fold=1) before it; tzdata
    # changes offsets on whole seconds, so bisecting seconds finds the jump exactly.
    after = int(utc.timestamp())
    before = int(local.replace(fold=1).astimezone(UTC).timestamp())
    new_offset = utc.astimezone(zone).utcoffset()
    while after - before > 1:
        middle = (after + before) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CalendarError(f"Unknown time zone {name!r}.", field="calendar.timezone") from None


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}.")


def _seconds(at: time, *, end: bool = False) -> int:
    seconds = at.hour * 3600 + at.minute * 60 + at.second
    return 86400 if end and not seconds else seconds


def _text(at: time, *, end: bool = False) -> str:
    return "24:00" if end and at == time(0) else f"{at:%H:%M}"


def _check_shifts(shifts: tuple[Shift, ...], label: str, field: str) -> None:
    previous_end = 0
    for start, end in shifts:
        if not isinstance(start, time) or not isinstance(end, time):
            raise CalendarError(f"{label}: a shift is a pair of times.", field=field)
        if start.second or start.microsecond or end.second or end.microsecond:
            raise CalendarError(f"{label}: shifts start and end on whole minutes.", field=field)
        shown = f"{_text(start)}–{_text(end, end=True)}"
        if _seconds(start) >= _seconds(end, end=True):
            raise CalendarError(
                f"{label}: shift {shown} does not end after it starts.", field=field
            )
        if _seconds(start) < previous_end:
            raise CalendarError(f"{label}: shift {shown} overlaps the one before it.", field=field)
        previous_end = _seconds(end, end=True)


def _parse_shifts(value: object, field: str) -> tuple[Shift, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise CalendarError("Give the day's shifts as a list of [start, end].", field=field)
    shifts = []
    for shift in value:
        if not isinstance(shift, list | tuple) or len(shift) != 2:
            raise CalendarError(f"A shift is [start, end], not {shift!r}.", field=field)
        shifts.append((_parse_time(shift[0], field), _parse_time(shift[1], field, end=True)))
    return tuple(sorted(shifts, key=lambda shift: _seconds(shift[0])))


def _parse_time(value: object, field: str, *, end: bool = False) -> time:
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match:
        hour, minute = int(match[1]), int(match[2])
        if end and (hour, minute) == (24, 0):
            return time(0)
        if hour < 24 and minute < 60 and not (end and (hour, minute) == (0, 0)):
            return time(hour, minute)
    allowed = "00:00–24:00" if end else "00:00–23:59"
    raise CalendarError(f"{value!r} is not a time of day HH:MM ({allowed}).", field=field)


def _parse_days(value: object) -> frozenset[date]:
    field = "calendar.closed_days"
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple):
        raise CalendarError("Days off are a list of dates (YYYY-MM-DD).", field=field)
    days = set()
    for item in value:
        try:
            days.add(date.fromisoformat(item))
        except (TypeError, ValueError):
            raise CalendarError(
                f"Day off {item!r} is not a date YYYY-MM-DD.", field=field
            ) from None
    return frozenset(days)


@functools.cache
def _supported() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


def _spelled_as_listed(country: str, subdivision: str) -> str:
    # people type "by" or "ca"; the holidays package wants its own spelling
    listed = {code.upper(): code for code in _supported().get(country, ())}
    return listed.get(subdivision.upper(), subdivision)


def _check_region(country: str, subdivision: str) -> None:
    if not country:
        if subdivision:
            raise CalendarError("A region needs its country.", field="calendar.country")
        return
    if country not in _supported():
        raise CalendarError(
            f"No public holidays are known for country {country!r}; use a code such as DE or US.",
            field="calendar.country",
        )
    if subdivision and subdivision not in _supported()[country]:
        known = ", ".join(_supported()[country])
        raise CalendarError(
            f"{country} has no region {subdivision!r}; known regions: {known}.",
            field="calendar.subdivision",
        )


@functools.lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str, year: int) -> dict[date, str]:
    # en_US (which every translated country has) rather than the server's locale, so a holiday
    # reads the same in every email and test
    found = holidays.country_holidays(
        country, subdiv=subdivision or None, years=year, language="en_US"
    )
    return dict(found.items())
