"""Property tests of business-time arithmetic across many IANA zones, near DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from escalade.policy.models import WEEKDAYS, Calendar, TimeRange
from escalade.sla.calendar import BusinessCalendar
from soak import scaled

ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",  # +12:45 / +13:45, changes at 02:45
    "America/Sao_Paulo",
    "Africa/Casablanca",  # DST suspended during Ramadan
    "Pacific/Auckland",
    "America/St_Johns",
    "Asia/Tokyo",
    "UTC",
    "Europe/Dublin",  # "negative" DST in tzdata
    "America/Los_Angeles",
    "Asia/Tehran",
    "America/Santiago",  # changes at midnight
    "Europe/Moscow",
    "Pacific/Apia",
    "America/Havana",  # changes at midnight
    "Asia/Beirut",  # changes at midnight
    "Antarctica/Troll",  # 2-hour DST
    "America/Nuuk",
]
assert len(ZONES) >= 20

MINUTE = timedelta(minutes=1)
SETTINGS = settings(max_examples=scaled(150), deadline=None)


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants where the zone's offset changes, 2025-2028 (found by bisection)."""
    tz = ZoneInfo(zone)
    found: list[datetime] = []
    t = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(hours=6)
    while t < datetime(2029, 1, 1, tzinfo=UTC):
        if t.astimezone(tz).utcoffset() != (t + step).astimezone(tz).utcoffset():
            lo, hi = t, t + step
            while hi - lo > MINUTE:
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(second=0, microsecond=0))
        t += step
    return tuple(found)


assert transitions("America/New_York") and transitions("Australia/Lord_Howe")


@st.composite
def time_ranges(draw: st.DrawFn) -> TimeRange:
    # quarter hours bias windows onto DST edges (02:00, 02:30, 02:45, midnight …)
    quarter = st.integers(0, 96)
    a, b = sorted(draw(st.lists(quarter, min_size=2, max_size=2, unique=True)))
    minutes = draw(st.sampled_from([0, 0, 7]))
    start = time(a // 4, (a % 4) * 15)
    if b == 96:
        return TimeRange(start=start, end=time(0), until_midnight=True)
    end_minute = (b % 4) * 15 + (minutes if b % 4 < 3 else 0)
    return TimeRange(start=start, end=time(b // 4, end_minute))


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    weekly = draw(
        st.dictionaries(
            st.sampled_from(WEEKDAYS), st.lists(time_ranges(), min_size=1, max_size=3), min_size=1
        )
    )
    return BusinessCalendar(Calendar(id="random", timezone=zone, weekly=weekly))


@st.composite
def instants(draw: st.DrawFn, calendar: BusinessCalendar) -> datetime:
    """Mostly near a DST change of the calendar's zone; sometimes anywhere."""
    changes = transitions(calendar.tz.key)
    offset = timedelta(
        minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)),
        microseconds=draw(st.sampled_from([0, 0, 0, 1, 999_999])),
    )
    if changes and draw(st.integers(0, 4)) > 0:
        return draw(st.sampled_from(changes)) + offset
    return datetime(2026, 6, 15, tzinfo=UTC) + offset * draw(st.integers(1, 100))


durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=80)).map(
    lambda d: d if d.microseconds % 3 else d - timedelta(microseconds=d.microseconds)
)
positive = durations.filter(lambda d: d > timedelta(0))


@SETTINGS
@given(st.data(), calendars(), durations)
def test_elapsed_inverts_add(data: st.DataObject, cal: BusinessCalendar, d: timedelta) -> None:
    start = data.draw(instants(cal))
    due = cal.add(start, d)
    assert due >= start
    assert cal.elapsed(start, due) == d


@SETTINGS
@given(st.data(), calendars(), positive)
def test_add_lands_in_or_at_the_end_of_an_open_window(
    data: st.DataObject, cal: BusinessCalendar, d: timedelta
) -> None:
    start = data.draw(instants(cal))
    due = cal.add(start, d)
    assert cal.is_open(due - timedelta(microseconds=1))
    # and no earlier instant would do: the last microsecond of work was needed
    assert cal.elapsed(start, due - timedelta(microseconds=1)) < d


@SETTINGS
@given(st.data(), calendars(), durations, durations)
def test_add_composes(
    data: st.DataObject, cal: BusinessCalendar, d1: timedelta, d2: timedelta
) -> None:
    start = data.draw(instants(cal))
    assert cal.add(start, d1 + d2) == cal.add(cal.add(start, d1), d2)


@SETTINGS
@given(st.data(), calendars(), durations, durations)
def test_deadlines_are_monotonic_in_start_and_duration(
    data: st.DataObject, cal: BusinessCalendar, d1: timedelta, d2: timedelta
) -> None:
    a, b = sorted([data.draw(instants(cal)), data.draw(instants(cal))])
    small, large = sorted([d1, d2])
    assert cal.add(a, small) <= cal.add(b, small)
    assert cal.add(a, small) <= cal.add(a, large)
    assert cal.elapsed(a, b) >= timedelta(0)


@SETTINGS
@given(st.data(), calendars())
def test_next_open_is_the_first_open_instant(data: st.DataObject, cal: BusinessCalendar) -> None:
    t = data.draw(instants(cal))
    opens = cal.next_open(t)
    assert opens >= t and cal.is_open(opens)
    assert cal.elapsed(t, opens) == timedelta(0)
    assert cal.is_open(t) == (opens == t)


def _wall_oracle_open(
    cal: BusinessCalendar, t: datetime, ranges: dict[str, list[TimeRange]]
) -> bool:
    """Open iff, on t's local date, the clock has shown a window's start by t but not yet its
    end (the first time the clock shows a time is when it counts). Exact for whole minutes,
    since windows and DST changes fall on whole minutes."""
    tz = cal.tz
    local = t.astimezone(tz)
    day = local.date()
    # the highest wall time shown so far today (in the fold, the first pass went higher)
    shown = [
        (t - k * MINUTE).astimezone(tz).replace(tzinfo=None)
        for k in range(0, 4 * 60 + 1)
        if (t - k * MINUTE).astimezone(tz).date() == day
    ]
    peak = max(shown)
    for r in ranges.get(WEEKDAYS[day.weekday()], []):
        start = datetime.combine(day, r.start)
        end = datetime.combine(day + timedelta(days=1) if r.until_midnight else day, r.end)
        if start <= peak and not end <= peak:
            return True
    return False


@settings(max_examples=scaled(100), deadline=None)
@given(st.data(), st.sampled_from(ZONES))
def test_is_open_matches_the_local_wall_clock(data: st.DataObject, zone: str) -> None:
    weekly = data.draw(
        st.dictionaries(
            st.sampled_from(WEEKDAYS), st.lists(time_ranges(), min_size=1, max_size=2), min_size=1
        )
    )
    cal = BusinessCalendar(Calendar(id="oracle", timezone=zone, weekly=weekly))
    t = data.draw(instants(cal)).replace(second=0, microsecond=0)
    assert cal.is_open(t) == _wall_oracle_open(cal, t, weekly)
