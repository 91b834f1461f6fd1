from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alignment.lib.business_time import (
    DEFAULT_CALENDAR,
    WEEKDAYS,
    Calendar,
    CalendarError,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)
QUARTER = timedelta(minutes=15)


def calendar(timezone="Europe/Berlin", country="", subdivision="", closed_days=(), **hours):
    """A calendar from JSON-style hours, e.g. mon=[["09:00", "17:00"]]."""
    return Calendar.from_json(
        {
            "timezone": timezone,
            "hours": hours,
            "country": country,
            "subdivision": subdivision,
            "closed_days": list(closed_days),
        }
    )


def berlin(*args):
    return datetime(*args, tzinfo=BERLIN)


def new_york(*args):
    return datetime(*args, tzinfo=NEW_YORK)


office = Calendar.from_json(DEFAULT_CALENDAR)  # Mon–Fri 09:00–17:00 Berlin, holidays of DE


def test_lead_arriving_friday_night_counts_from_monday_morning():
    # 2026-11-27 is a Friday
    due = office.add(berlin(2026, 11, 27, 22), 4 * HOUR)
    assert due == berlin(2026, 11, 30, 13)
    assert due.tzinfo is UTC


def test_between_skips_the_weekend():
    assert office.between(berlin(2026, 11, 27, 15), berlin(2026, 11, 30, 11)) == 4 * HOUR


def test_lunch_gap_of_a_split_shift_adds_nothing():
    split = calendar(mon=[["13:00", "17:00"], ["09:00", "12:00"]])
    assert split.add(berlin(2026, 11, 30, 11), 2 * HOUR) == berlin(2026, 11, 30, 14)
    assert split.between(berlin(2026, 11, 30, 10), berlin(2026, 11, 30, 15)) == 4 * HOUR
    assert split.between(berlin(2026, 11, 30, 12), berlin(2026, 11, 30, 13)) == timedelta(0)


def test_public_holidays_add_nothing():
    # Christmas Day 2026 is a Friday, Christmas Eve an ordinary Thursday in Germany
    assert office.is_holiday(date(2026, 12, 25)) == "Christmas Day"
    assert office.is_holiday(date(2026, 12, 24)) is None
    assert office.add(berlin(2026, 12, 24, 16), 2 * HOUR) == berlin(2026, 12, 28, 10)
    whit_monday = (berlin(2026, 5, 25), berlin(2026, 5, 26))
    assert office.is_holiday(date(2026, 5, 25)) == "Pentecost Monday"
    assert office.between(*whit_monday) == timedelta(0)


def test_a_regional_holiday_closes_only_its_region():
    weekdays = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}
    bavaria = calendar(country="DE", subdivision="BY", **weekdays)
    berlin_office = calendar(country="DE", subdivision="BE", **weekdays)
    epiphany = (berlin(2026, 1, 6), berlin(2026, 1, 7))  # a Tuesday
    assert bavaria.between(*epiphany) == timedelta(0)
    assert bavaria.is_holiday(date(2026, 1, 6)) == "Epiphany"
    assert berlin_office.between(*epiphany) == 8 * HOUR
    assert berlin_office.is_holiday(date(2026, 1, 6)) is None


def test_company_days_off_add_nothing():
    closed = calendar(
        mon=[["09:00", "17:00"]], thu=[["09:00", "17:00"]], closed_days=["2026-12-31"]
    )
    assert closed.is_holiday(date(2026, 12, 31)) == "Company day off"
    assert closed.between(berlin(2026, 12, 31), berlin(2027, 1, 1)) == timedelta(0)
    assert closed.add(berlin(2026, 12, 31, 10), HOUR) == berlin(2027, 1, 4, 10)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), 4),  # 02:00 jumps to 03:00
        ("America/New_York", date(2026, 11, 1), 6),  # 01:00–02:00 happens twice
        ("America/New_York", date(2026, 3, 1), 5),
        ("Europe/Berlin", date(2026, 3, 29), 4),
        ("Europe/Berlin", date(2026, 10, 25), 6),
    ],
)
def test_a_shift_across_a_clock_change_holds_the_wall_clock_hours(zone, day, hours):
    night = calendar(timezone=zone, sun=[["00:00", "05:00"]])
    local = ZoneInfo(zone)
    start, end = datetime.combine(day, time(0), local), datetime.combine(day, time(12), local)
    assert night.between(start, end) == hours * HOUR
    assert night.add(start, hours * HOUR) == datetime.combine(day, time(5), local)


def test_a_shift_boundary_the_clock_skips_is_the_moment_it_jumps():
    # 2026-03-08 in New York: 02:00 EST is followed by 03:00 EDT (07:00 UTC)
    skipped = calendar(timezone="America/New_York", sun=[["02:30", "04:00"]])
    assert skipped.next_open(new_york(2026, 3, 8, 1)) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert skipped.between(new_york(2026, 3, 8), new_york(2026, 3, 9)) == HOUR
    vanished = calendar(
        timezone="America/New_York", sun=[["02:00", "02:30"]], mon=[["09:00", "10:00"]]
    )
    assert vanished.between(new_york(2026, 3, 8), new_york(2026, 3, 9)) == timedelta(0)
    assert vanished.between(new_york(2026, 3, 15), new_york(2026, 3, 16)) == HOUR / 2


def test_a_shift_boundary_the_clock_shows_twice_is_its_first_occurrence():
    # 2026-11-01 in New York: 01:00–02:00 happens first in EDT (05:00 UTC), then in EST
    late_start = calendar(timezone="America/New_York", sun=[["01:30", "03:00"]])
    assert late_start.next_open(new_york(2026, 11, 1)) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert late_start.between(new_york(2026, 11, 1), new_york(2026, 11, 2)) == 2.5 * HOUR
    early_end = calendar(timezone="America/New_York", sun=[["00:00", "01:30"]])
    assert early_end.between(new_york(2026, 11, 1), new_york(2026, 11, 2)) == 1.5 * HOUR


def test_midnight_changes_of_havana_keep_days_apart():
    # Havana moves 00:00 to 01:00 in March and 01:00 back to 00:00 in November
    nights = calendar(timezone="America/Havana", sat=[["22:00", "24:00"]], sun=[["00:00", "02:00"]])
    havana = ZoneInfo("America/Havana")
    assert (
        nights.between(datetime(2026, 3, 7, tzinfo=havana), datetime(2026, 3, 9, tzinfo=havana))
        == 3 * HOUR
    )
    assert (
        nights.between(datetime(2026, 10, 31, tzinfo=havana), datetime(2026, 11, 2, tzinfo=havana))
        == 5 * HOUR
    )


def test_is_open_and_next_open():
    friday_night, monday_morning = berlin(2026, 11, 27, 22), berlin(2026, 11, 30, 9)
    assert not office.is_open(friday_night)
    assert office.next_open(friday_night) == monday_morning
    assert office.is_open(monday_morning)
    assert office.next_open(berlin(2026, 11, 30, 10, 15)) == datetime(
        2026, 11, 30, 9, 15, tzinfo=UTC
    )
    # a shift is open at its start and closed at its end
    assert not office.is_open(berlin(2026, 11, 30, 17))
    assert office.is_open(berlin(2026, 11, 30, 17) - MICROSECOND)
    assert not office.is_open(berlin(2026, 12, 25, 10))


def test_time_running_out_at_a_shift_end_is_due_at_that_end():
    assert office.add(berlin(2026, 11, 30, 9), 8 * HOUR) == berlin(2026, 11, 30, 17)


def test_zero_duration_is_due_at_once_even_at_night():
    due = office.add(berlin(2026, 11, 27, 22), timedelta(0))
    assert due == berlin(2026, 11, 27, 22)
    assert due.tzinfo is UTC


def test_a_shift_may_run_to_midnight():
    nights = calendar(mon=[["18:00", "24:00"]], tue=[["00:00", "06:00"]])
    assert nights.add(berlin(2026, 11, 30, 23), 2 * HOUR) == berlin(2026, 12, 1, 1)
    assert nights.as_json()["hours"]["mon"] == [["18:00", "24:00"]]
    assert nights.hours[0] == ((time(18), time(0)),)


def test_negative_duration_is_refused():
    with pytest.raises(ValueError, match="negative"):
        office.add(berlin(2026, 11, 30, 9), -HOUR)


@pytest.mark.parametrize(
    "call",
    [
        lambda: office.add(datetime(2026, 11, 30, 9), HOUR),
        lambda: office.between(datetime(2026, 11, 30, 9), berlin(2026, 12, 1)),
        lambda: office.between(berlin(2026, 11, 30, 9), datetime(2026, 12, 1)),
        lambda: office.is_open(datetime(2026, 11, 30, 9)),
        lambda: office.next_open(datetime(2026, 11, 30, 9)),
    ],
)
def test_naive_datetimes_are_refused(call):
    with pytest.raises(ValueError, match="aware"):
        call()


def test_between_is_zero_when_end_is_not_after_start():
    assert office.between(berlin(2026, 12, 1, 12), berlin(2026, 11, 30, 12)) == timedelta(0)


def test_a_calendar_without_open_days_for_years_gives_up():
    mondays = [date(2026, 11, 30) + timedelta(weeks=n) for n in range(4 * 53)]
    never = calendar(mon=[["09:00", "17:00"]], closed_days=[day.isoformat() for day in mondays])
    with pytest.raises(CalendarError, match="no open time in the 3 years"):
        never.add(berlin(2026, 11, 30), HOUR)
    with pytest.raises(CalendarError):
        never.next_open(berlin(2026, 11, 30))
    # measuring needs no horizon: it stops at its end
    assert never.between(berlin(2026, 11, 30), berlin(2030, 12, 1)) == timedelta(0)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "calendar.timezone", "Unknown time zone 'Mars/Olympus'"),
        ({"timezone": ""}, "calendar.timezone", "Choose a time zone"),
        ({"hours": {"mon": [["09:00", "25:00"]]}}, "calendar.hours.mon", "'25:00' is not a time"),
        ({"hours": {"mon": [["24:00", "24:00"]]}}, "calendar.hours.mon", "'24:00' is not a time"),
        ({"hours": {"tue": [["17:00", "09:00"]]}}, "calendar.hours.tue", "does not end after"),
        ({"hours": {"tue": [["09:00", "00:00"]]}}, "calendar.hours.tue", "'00:00' is not a time"),
        (
            {"hours": {"wed": [["09:00", "13:00"], ["12:00", "17:00"]]}},
            "calendar.hours.wed",
            "overlaps",
        ),
        ({"hours": {"thu": ["09:00-17:00"]}}, "calendar.hours.thu", "A shift is [start, end]"),
        ({"hours": {"monday": [["09:00", "17:00"]]}}, "calendar.hours", "Unknown weekday monday"),
        ({"hours": {"sat": []}}, "calendar.hours", "at least one open hour"),
        ({"country": "XX"}, "calendar.country", "No public holidays are known for country 'XX'"),
        ({"subdivision": "ZZ"}, "calendar.subdivision", "DE has no region 'ZZ'; known regions: BB"),
        ({"closed_days": ["2026-13-01"]}, "calendar.closed_days", "'2026-13-01' is not a date"),
        ({"closed_days": "2026-12-24"}, "calendar.closed_days", "a list of dates"),
        ({"holidays": "DE"}, "calendar", "Unknown calendar setting: holidays"),
    ],
)
def test_invalid_calendars_are_refused_with_the_field_at_fault(changes, field, message):
    data = {**DEFAULT_CALENDAR, **changes}
    with pytest.raises(CalendarError) as raised:
        Calendar.from_json(data)
    assert raised.value.field == field
    assert message in raised.value.message


def test_json_round_trip_sorts_shifts_and_spells_codes_as_the_holidays_package():
    data = {
        "timezone": "America/Los_Angeles",
        "hours": {"mon": [["13:00", "17:00"], ["9:00", "12:00"]], "sat": [["10:00", "24:00"]]},
        "country": "us",
        "subdivision": "ca",
        "closed_days": ["2026-12-31", "2026-12-24"],
    }
    loaded = Calendar.from_json(data)
    stored = loaded.as_json()
    assert stored["hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert stored["hours"]["tue"] == [] and stored["hours"]["sat"] == [["10:00", "24:00"]]
    assert (stored["country"], stored["subdivision"]) == ("US", "CA")
    assert stored["closed_days"] == ["2026-12-24", "2026-12-31"]
    assert Calendar.from_json(loaded.as_json()) == loaded
    assert Calendar.from_json(DEFAULT_CALENDAR).as_json() == DEFAULT_CALENDAR


def test_describe_reads_as_one_line():
    weekdays = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}
    bavaria = calendar(
        country="DE", subdivision="BY", closed_days=["2026-12-24", "2026-12-31"], **weekdays
    )
    assert bavaria.describe() == (
        "Mon–Fri 09:00–17:00 Europe/Berlin, public holidays of DE-BY, 2 company days off"
    )
    split = calendar(
        timezone="UTC",
        mon=[["09:00", "12:00"], ["13:00", "17:00"]],
        tue=[["09:00", "12:00"], ["13:00", "17:00"]],
        sat=[["10:00", "24:00"]],
        closed_days=["2026-12-24"],
    )
    assert split.describe() == (
        "Mon–Tue 09:00–12:00 and 13:00–17:00, Sat 10:00–24:00 UTC, 1 company day off"
    )


# Laws, for random calendars and instants. Zones with clock changes at 02:00 (New York), at
# midnight (Havana, Santiago), by half an hour (Lord Howe), and without any (UTC, Kolkata).
CLOCK_CHANGES = {  # 2026, in UTC
    "UTC": [],
    "Asia/Kolkata": [],
    "Europe/Berlin": [datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 1)],
    "America/New_York": [datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6)],
    "America/Havana": [datetime(2026, 3, 8, 5), datetime(2026, 11, 1, 5)],
    "America/Santiago": [datetime(2026, 4, 5, 3), datetime(2026, 9, 6, 4)],
    "Australia/Lord_Howe": [datetime(2026, 4, 4, 15), datetime(2026, 10, 3, 15, 30)],
}
ZONES = list(CLOCK_CHANGES)


def _shifts(marks: set[int]) -> tuple[tuple[time, time], ...]:
    ordered = sorted(marks)
    return tuple(
        (_quarter(a), _quarter(b)) for a, b in zip(ordered[::2], ordered[1::2], strict=False)
    )


def _quarter(n: int) -> time:
    return time(0) if n == 96 else time(n // 4, n % 4 * 15)


# Boundaries on quarter hours, half of them in the hours around midnight and 02:00 where the
# clocks of ZONES change, so that shifts meet skipped and repeated hours.
marks = st.one_of(st.integers(0, 96), st.integers(0, 12), st.integers(92, 96))
day_shifts = st.sets(marks, max_size=4).map(_shifts)  # up to two shifts a day
calendars = st.builds(
    lambda zone, hours, region, closed: Calendar(zone, hours, *region, closed),
    st.sampled_from(ZONES),
    st.tuples(*[day_shifts] * 7).filter(any),
    st.sampled_from([("", ""), ("DE", "BY"), ("US", "CA")]),
    st.frozensets(st.dates(date(2026, 1, 1), date(2027, 3, 1)), max_size=8),
)


def _instants(zone: str) -> st.SearchStrategy[datetime]:
    anywhere = st.datetimes(datetime(2025, 12, 1), datetime(2027, 2, 1))
    if changes := CLOCK_CHANGES[zone]:
        near = st.sampled_from(changes)
        days = st.timedeltas(-timedelta(days=3), timedelta(days=3))
        anywhere = st.one_of(st.builds(lambda at, offset: at + offset, near, days), anywhere)
    return anywhere.map(lambda at: at.replace(tzinfo=UTC))


# instants for a calendar, half of them within 3 days of a clock change of its zone
INSTANTS = {zone: _instants(zone) for zone in ZONES}
durations = st.timedeltas(timedelta(0), timedelta(hours=60))
gaps = st.timedeltas(timedelta(0), timedelta(days=20))
laws = settings(max_examples=200, deadline=None)


@laws
@given(calendars, st.data(), durations, durations)
def test_adding_then_measuring_gives_the_duration_back(cal, data, first, second):
    start = data.draw(INSTANTS[cal.timezone])
    shorter, longer = sorted([first, second])
    assert start <= cal.add(start, shorter) <= cal.add(start, longer)
    for duration in (shorter, longer):
        due = cal.add(start, duration)
        assert cal.between(start, due) == duration
        if duration:
            # the clock stops while running: `due` is inside a shift or at its end
            assert cal.is_open(due - MICROSECOND)
            assert cal.between(due - MICROSECOND, due) == MICROSECOND


@laws
@given(calendars, st.data())
def test_measuring_is_additive_and_monotone_in_its_end(cal, data):
    a = data.draw(INSTANTS[cal.timezone])
    b = a + data.draw(gaps)
    c = b + data.draw(gaps)
    assert cal.between(a, b) + cal.between(b, c) == cal.between(a, c)
    assert cal.between(a, b) <= cal.between(a, c) <= c - a


@laws
@given(calendars, st.data(), st.integers(1, 4 * 24 * 3))
def test_business_time_is_the_count_of_open_quarter_hours(cal, data, quarters):
    # every shift boundary and every clock change of ZONES falls on a quarter hour of UTC, so
    # looking at each quarter hour once measures open time exactly
    at = data.draw(INSTANTS[cal.timezone])
    start = at.replace(minute=at.minute // 15 * 15, second=0, microsecond=0)
    grid = [start + n * QUARTER for n in range(quarters)]
    assert cal.between(start, start + quarters * QUARTER) == QUARTER * sum(map(cal.is_open, grid))


@laws
@given(calendars, st.data())
def test_the_calendar_is_open_when_its_wall_clock_is_inside_a_shift(cal, data):
    at = data.draw(INSTANTS[cal.timezone])
    opens = cal.next_open(at)
    assert cal.between(at, opens) == timedelta(0)
    assert cal.is_open(opens)
    assert (opens == at) == cal.is_open(at)
    zone = ZoneInfo(cal.timezone)
    local = at.astimezone(zone)
    day = local.date()
    offsets = {datetime.combine(day + timedelta(days=n), time(0), zone).utcoffset() for n in (0, 1)}
    if len(offsets) == 1:  # a day with a clock change follows the rules in the module docstring
        inside = any(
            start <= local.time() and (end == time(0) or local.time() < end)
            for start, end in cal.hours[day.weekday()]
        )
        assert cal.is_open(at) == (inside and cal.is_holiday(day) is None)


@laws
@given(calendars, st.data())
def test_holidays_add_nothing(cal, data):
    public = {date(2026, 1, 1), date(2026, 12, 25)} if cal.country else set()
    days = sorted(cal.closed_days | public)
    assume(days)
    day = data.draw(st.sampled_from(days))
    zone = ZoneInfo(cal.timezone)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    assert cal.is_holiday(day)
    assert cal.between(start, end) == timedelta(0)
    assert not cal.is_open(
        start + data.draw(st.timedeltas(timedelta(0), end - start - MICROSECOND))
    )


@laws
@given(calendars)
def test_json_round_trip_keeps_the_calendar(cal):
    assert Calendar.from_json(cal.as_json()) == cal
