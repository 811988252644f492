"""Business-time table tests: seed 003's Engineering hours (9 AM - 6 PM ET), holidays, DST."""

from __future__ import annotations

import time as clock_for_bench_only
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from escalade.policy.models import Calendar
from escalade.sla.calendar import BusinessCalendar, NoWorkingTime
from escalade.sla.localtime import first_instant

NY = ZoneInfo("America/New_York")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def cal(**fields: object) -> BusinessCalendar:
    return BusinessCalendar(Calendar.model_validate({"id": "c", **fields}))


ENGINEERING = cal(timezone="America/New_York", hours="mon-fri 09:00-18:00", holidays="US")


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.mark.parametrize(
    ("opened", "target", "due"),
    [
        # seed 003: a 2h target opened Friday 17:30 ET is due Monday 10:30 ET (and this
        # weekend is the 2026 spring-forward, which changes nothing in business time)
        (ny(2026, 3, 6, 17, 30), 2 * H, ny(2026, 3, 9, 10, 30)),
        (ny(2026, 1, 9, 17, 30), 2 * H, ny(2026, 1, 12, 10, 30)),
        # opened inside hours
        (ny(2026, 1, 5, 9, 0), 2 * H, ny(2026, 1, 5, 11, 0)),
        # exactly filling the day lands at its close, not at next morning
        (ny(2026, 1, 5, 9, 0), 9 * H, ny(2026, 1, 5, 18, 0)),
        (ny(2026, 1, 5, 9, 0), 9 * H + M, ny(2026, 1, 6, 9, 1)),
        # opened before hours / at the weekend
        (ny(2026, 1, 5, 6, 0), 30 * M, ny(2026, 1, 5, 9, 30)),
        (ny(2026, 1, 10, 12, 0), 4 * H, ny(2026, 1, 12, 13, 0)),
        # Thanksgiving (Thu 2026-11-26) is skipped; Friday is a working day
        (ny(2026, 11, 25, 17, 0), 2 * H, ny(2026, 11, 27, 10, 0)),
        # Christmas Friday 2026-12-25 and the weekend are skipped
        (ny(2026, 12, 24, 17, 0), 2 * H, ny(2026, 12, 28, 10, 0)),
        # a 4h resolution target over Independence Day observed (Fri 2026-07-03)
        (ny(2026, 7, 2, 16, 0), 4 * H, ny(2026, 7, 6, 11, 0)),
        # 45h = one business week
        (ny(2026, 2, 2, 9, 0), 45 * H, ny(2026, 2, 6, 18, 0)),
    ],
)
def test_engineering_hours(opened: datetime, target: timedelta, due: datetime) -> None:
    got = ENGINEERING.add(opened, target)
    assert got == due
    assert got.tzinfo is UTC
    assert ENGINEERING.elapsed(opened, got) == target


def test_open_and_next_open() -> None:
    assert ENGINEERING.is_open(ny(2026, 1, 5, 9, 0))
    assert not ENGINEERING.is_open(ny(2026, 1, 5, 18, 0))  # windows are half-open
    assert not ENGINEERING.is_open(ny(2026, 11, 26, 12, 0))  # Thanksgiving
    assert ENGINEERING.next_open(ny(2026, 11, 26, 12, 0)) == ny(2026, 11, 27, 9, 0)
    assert ENGINEERING.next_open(ny(2026, 1, 5, 12, 0)) == ny(2026, 1, 5, 12, 0)
    assert ENGINEERING.next_open(ny(2026, 1, 9, 18, 0)) == ny(2026, 1, 12, 9, 0)


def test_elapsed_is_signed_and_zero_outside_hours() -> None:
    a, b = ny(2026, 1, 9, 17, 0), ny(2026, 1, 12, 10, 0)
    assert ENGINEERING.elapsed(a, b) == 2 * H
    assert ENGINEERING.elapsed(b, a) == -2 * H
    assert ENGINEERING.elapsed(ny(2026, 1, 10, 0), ny(2026, 1, 11, 23)) == timedelta(0)


def test_spring_forward_window_loses_the_missing_hour() -> None:
    # Sunday 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT.
    night = cal(timezone="America/New_York", weekly={"sun": ["01:30-03:30"]})
    assert night.elapsed(ny(2026, 3, 8, 0), ny(2026, 3, 8, 12)) == H  # 1h, not 2h
    assert night.elapsed(ny(2026, 3, 1, 0), ny(2026, 3, 1, 12)) == 2 * H  # ordinary Sunday
    assert night.add(ny(2026, 3, 8, 1, 30), 30 * M) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    # 01:59 EST then 03:00 EDT: the 30 min straddle the jump
    assert night.add(ny(2026, 3, 8, 1, 45), 30 * M) == ny(2026, 3, 8, 3, 15)


def test_window_starting_in_the_gap_opens_at_the_jump() -> None:
    gap = cal(timezone="America/New_York", weekly={"sun": ["02:30-05:00"]})
    # the clock shows 03:00 EDT right after 01:59:59 EST: from then on it is past 02:30
    assert gap.next_open(ny(2026, 3, 8, 0)) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert gap.elapsed(ny(2026, 3, 8, 0), ny(2026, 3, 8, 12)) == 2 * H
    assert not cal(timezone="America/New_York", weekly={"sun": ["02:10-02:50"]}).is_open(
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    )


def test_fall_back_window_contains_the_repeated_hour_twice() -> None:
    # Sunday 2026-11-01 in New York: 02:00 EDT falls back to 01:00 EST.
    night = cal(timezone="America/New_York", weekly={"sun": ["00:30-03:00"]})
    assert night.elapsed(ny(2026, 11, 1, 0), ny(2026, 11, 1, 12)) == timedelta(hours=3, minutes=30)
    second_pass = datetime(2026, 11, 1, 1, 15, tzinfo=NY, fold=1)
    assert night.is_open(second_pass)
    # a window that ends inside the fold closes the first time the clock shows its end
    early = cal(timezone="America/New_York", weekly={"sun": ["00:00-01:30"]})
    assert early.elapsed(ny(2026, 11, 1, 0), ny(2026, 11, 1, 12)) == timedelta(hours=1, minutes=30)
    assert not early.is_open(second_pass)


def test_first_instant_maps_gap_and_fold() -> None:
    assert first_instant(datetime(2026, 3, 8, 2, 30), NY) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert first_instant(datetime(2026, 11, 1, 1, 30), NY) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # 30-minute DST: 02:00 → 02:30 on 2026-10-04
    assert first_instant(datetime(2026, 10, 4, 2, 10), lord_howe) == first_instant(
        datetime(2026, 10, 4, 2, 30), lord_howe
    )


def test_twenty_four_seven_is_plain_addition() -> None:
    always = cal(timezone="Europe/Berlin", hours="24/7")
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    for d in (timedelta(0), 37 * M, 30 * 24 * H):
        assert always.add(start, d) == start + d
        assert always.elapsed(start, start + d) == d
    assert always.is_open(start) and always.next_open(start) == start
    assert BusinessCalendar.twenty_four_seven().add(start, H) == start + H


def test_until_midnight_and_overlapping_ranges() -> None:
    late = cal(
        timezone="Europe/London",
        weekly={"mon": ["18:00-24:00", "20:00-22:00"], "tue": ["00:00-02:00"]},
    )
    monday = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
    assert late.elapsed(monday, monday + 12 * H) == 8 * H
    assert late.add(monday, 7 * H) == datetime(2026, 1, 6, 1, 0, tzinfo=UTC)


def test_closed_dates_and_subdivision_holidays() -> None:
    c = cal(
        timezone="Europe/Berlin",
        hours="mon-fri 09:00-17:00",
        holidays=[{"country": "DE", "subdivision": "BY"}],
        closed=["2026-01-07"],
    )
    # Jan 6 (Epiphany, a Bavarian holiday) and Jan 7 (closed) are skipped
    start = datetime(2026, 1, 5, 16, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert c.add(start, 2 * H) == datetime(2026, 1, 8, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert c.is_closed_day(date(2026, 1, 6)) and c.is_closed_day(date(2026, 1, 7))
    berlin = cal(timezone="Europe/Berlin", hours="mon-fri 09:00-17:00", holidays="DE")
    assert not berlin.is_closed_day(date(2026, 1, 6))


def test_naive_times_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        ENGINEERING.add(datetime(2026, 1, 5, 9), H)
    with pytest.raises(ValueError, match="no time zone"):
        ENGINEERING.is_open(datetime(2026, 1, 5, 9))
    with pytest.raises(ValueError, match="negative"):
        ENGINEERING.add(ny(2026, 1, 5, 9), -H)


def test_bad_zone_and_unknown_holidays_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="not an IANA time zone"):
        cal(timezone="Mars/Olympus_Mons", hours="24/7")
    with pytest.raises(ValueError, match="holidays for 'XX'"):
        cal(timezone="UTC", hours="mon-fri 09:00-17:00", holidays="XX")


def test_calendar_with_no_open_time_raises_instead_of_looping() -> None:
    start = date(2026, 1, 1)
    all_closed = [str(start + timedelta(days=i)) for i in range(4 * 366)]
    c = cal(timezone="UTC", weekly={"mon": ["09:00-10:00"]}, closed=all_closed)
    with pytest.raises(NoWorkingTime, match="no working hours in the"):
        c.add(datetime(2026, 1, 1, tzinfo=UTC), H)
    with pytest.raises(NoWorkingTime):
        c.next_open(datetime(2026, 1, 1, tzinfo=UTC))
    assert c.elapsed(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)) == (
        timedelta(0)
    )


def test_long_durations_go_window_by_window() -> None:
    fresh = cal(timezone="America/New_York", hours="mon-fri 09:00-18:00", holidays="US")
    start = ny(2026, 1, 5, 9, 0)
    began = clock_for_bench_only.perf_counter()
    # 30 days = 720h = 80 working days of 9h: 16 weeks from Jan 5 less MLK Day and
    # Washington's Birthday, plus Mon-Tue Apr 27-28; due at the close of Apr 28.
    due = fresh.add(start, timedelta(days=30))
    spent = clock_for_bench_only.perf_counter() - began
    assert fresh.elapsed(start, due) == timedelta(days=30)
    assert due == ny(2026, 4, 28, 18, 0)
    assert spent < 0.5, f"30 days of business time took {spent:.3f}s"
