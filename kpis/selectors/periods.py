"""Periods the figures are counted over: ISO weeks and months cut in a time zone."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alignment.lib.errors import DomainError

# --- periods -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC, named by its ISO week ("2026-W47") or month ("2026-11")."""

    start: datetime
    end: datetime
    label: str
    kind: str  # "week" or "month"
    timezone: str

    @property
    def first_day(self) -> date:
        return self.start.astimezone(ZoneInfo(self.timezone)).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(ZoneInfo(self.timezone)) - timedelta(seconds=1)).date()

    def until(self, at: datetime) -> "Period":
        """The period cut at `at` (a week still in progress is counted up to now)."""
        return Period(
            self.start, min(self.end, max(self.start, at)), self.label, self.kind, self.timezone
        )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def iso_week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def iso_week_period(week: str, *, tz: str) -> Period:
    """ISO week "2026-W47": Monday 00:00 to the next Monday 00:00 in `tz`."""
    try:
        year, number = week.strip().upper().split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise DomainError(
            f"{week!r} is not an ISO week: write it like 2026-W47 (year, W, week 01-53).",
            field="week",
        ) from None
    zone = ZoneInfo(tz)
    return Period(
        _midnight(monday, zone),
        _midnight(monday + timedelta(days=7), zone),
        iso_week_label(monday),
        "week",
        tz,
    )


def iso_week_of(at: datetime, *, tz: str) -> str:
    return iso_week_label(at.astimezone(ZoneInfo(tz)).date())


def weeks_back(week: str, count: int) -> list[str]:
    """`count` ISO weeks ending with `week`, oldest first."""
    monday = date.fromisocalendar(*(int(p) for p in week.split("-W")), 1)
    return [iso_week_label(monday - timedelta(weeks=n)) for n in range(count - 1, -1, -1)]


def month_period(month: str, *, tz: str) -> Period:
    """Calendar month "2026-11" in `tz`."""
    try:
        year, number = (int(p) for p in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise DomainError(f"{month!r} is not a month: write it like 2026-11.") from None
    following = date(year + number // 12, number % 12 + 1, 1)
    zone = ZoneInfo(tz)
    return Period(_midnight(first, zone), _midnight(following, zone), month, "month", tz)


def months_back(month: str, count: int) -> list[str]:
    year, number = (int(p) for p in month.split("-"))
    index = year * 12 + number - 1
    return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def days_in_month(day: date) -> int:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return (following - date(day.year, day.month, 1)).days


# --- marketing: MQLs, acceptance, rejections, pipeline, wins -----------------------------------
