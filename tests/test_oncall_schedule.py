"""Who is on call: weekly/daily/custom rotations in local time, layers, overrides, hand-offs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalade.oncall import Override, next_handoff, on_call
from escalade.policy.models import Rotation, Schedule
from soak import scaled

NY = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY, fold=fold)


def schedule(*layers: dict[str, object], tz: str = "America/New_York") -> Schedule:
    return Schedule(
        id="s", timezone=tz, layers=[Rotation.model_validate(layer) for layer in layers]
    )


# seed 003: weekly rotation; hand-off Monday 09:00 local
WEEKLY = schedule({"kind": "weekly", "start": "2026-02-23T09:00", "people": ["ana", "ben", "cy"]})


@pytest.mark.parametrize(
    ("at", "who"),
    [
        (ny(2026, 2, 23, 8, 59), []),  # before the rotation starts
        (ny(2026, 2, 23, 9, 0), ["ana"]),
        (ny(2026, 3, 2, 8, 59), ["ana"]),
        (ny(2026, 3, 2, 9, 0), ["ben"]),
        # the week with the spring-forward (Sun 2026-03-08): still 09:00 local on Monday
        (ny(2026, 3, 9, 8, 59), ["ben"]),
        (ny(2026, 3, 9, 9, 0), ["cy"]),
        (ny(2026, 3, 16, 9, 0), ["ana"]),
        # and across the fall-back (Sun 2026-11-01): week 36 → ana again
        (ny(2026, 11, 2, 8, 59), ["cy"]),
        (ny(2026, 11, 2, 9, 0), ["ana"]),
        (datetime(2026, 11, 2, 14, 0, tzinfo=UTC), ["ana"]),  # 09:00 EST, not EDT
        (datetime(2026, 11, 2, 13, 59, tzinfo=UTC), ["cy"]),
    ],
)
def test_weekly_rotation_hands_off_at_local_nine(at: datetime, who: list[str]) -> None:
    assert on_call(WEEKLY, at, []) == who


def test_weekly_handoff_stays_local_across_dst() -> None:
    before = next_handoff(WEEKLY, ny(2026, 3, 3, 12))
    after = next_handoff(WEEKLY, ny(2026, 3, 9, 12))
    assert before == ny(2026, 3, 9, 9) == datetime(2026, 3, 9, 13, tzinfo=UTC)
    assert after == ny(2026, 3, 16, 9) == datetime(2026, 3, 16, 13, tzinfo=UTC)
    assert next_handoff(WEEKLY, ny(2026, 2, 24, 12)) == datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert next_handoff(WEEKLY, ny(2026, 3, 9, 9)) == ny(2026, 3, 16, 9)  # strictly after
    assert next_handoff(WEEKLY, ny(2026, 1, 1)) == ny(2026, 2, 23, 9)  # the first shift


def test_daily_rotation_with_handoff_time_in_the_dst_gap() -> None:
    # hand-off at 02:30 local: on the spring-forward day it happens at the jump (03:00 EDT)
    daily = schedule(
        {"kind": "daily", "start": "2026-03-06T00:00", "handoff": "02:30", "people": ["a", "b"]}
    )
    assert on_call(daily, ny(2026, 3, 6, 2, 29), []) == []
    assert on_call(daily, ny(2026, 3, 6, 2, 30), []) == ["a"]
    assert on_call(daily, ny(2026, 3, 7, 2, 30), []) == ["b"]
    assert next_handoff(daily, ny(2026, 3, 7, 12)) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert on_call(daily, ny(2026, 3, 8, 1, 59), []) == ["b"]
    assert on_call(daily, ny(2026, 3, 8, 3, 0), []) == ["a"]


def test_daily_handoff_in_the_repeated_hour_happens_once() -> None:
    daily = schedule({"kind": "daily", "start": "2026-10-30T01:30", "people": ["a", "b"]})
    # Sun 2026-11-01: 01:00-02:00 happens twice; the hand-off is at the first 01:30
    assert on_call(daily, ny(2026, 11, 1, 1, 29), []) == ["b"]
    assert on_call(daily, ny(2026, 11, 1, 1, 30), []) == ["a"]
    assert on_call(daily, ny(2026, 11, 1, 1, 10, fold=1), []) == ["a"]  # no hand-back
    assert next_handoff(daily, ny(2026, 11, 1, 1, 45)) == ny(2026, 11, 2, 1, 30)


def test_custom_twelve_hour_shifts_keep_local_clock_times() -> None:
    shifts = schedule(
        {"kind": "custom", "every": "12h", "start": "2026-03-07T08:00", "people": ["day", "night"]}
    )
    assert on_call(shifts, ny(2026, 3, 7, 12), []) == ["day"]
    assert on_call(shifts, ny(2026, 3, 7, 23), []) == ["night"]
    # the night shift over the spring-forward is 11h long; the next day starts 08:00 EDT
    assert next_handoff(shifts, ny(2026, 3, 7, 23)) == ny(2026, 3, 8, 8)
    assert on_call(shifts, ny(2026, 3, 8, 8), []) == ["day"]
    assert on_call(shifts, ny(2026, 3, 8, 20), []) == ["night"]


LAYERED = schedule(
    {"kind": "weekly", "start": "2026-01-05T09:00", "people": ["ana", "ben"]},
    {"kind": "daily", "start": "2026-01-05T09:00", "people": ["lead1", "ana"]},
)


def test_layers_list_the_highest_first_without_repeats() -> None:
    assert on_call(LAYERED, ny(2026, 1, 5, 10), []) == ["lead1", "ana"]
    assert on_call(LAYERED, ny(2026, 1, 6, 10), []) == ["ana"]  # ana is in both layers
    assert next_handoff(LAYERED, ny(2026, 1, 5, 10)) == ny(2026, 1, 6, 9)


def test_overrides_replace_the_top_person_or_a_named_one() -> None:
    at = ny(2026, 1, 5, 10)
    cover = Override("dee", ny(2026, 1, 5, 9), ny(2026, 1, 5, 17))
    assert on_call(LAYERED, at, [cover]) == ["dee", "ana"]
    assert on_call(LAYERED, ny(2026, 1, 5, 17), [cover]) == ["lead1", "ana"]  # half-open
    swap = Override("eve", ny(2026, 1, 5, 9), ny(2026, 1, 5, 17), replaces="ana")
    assert on_call(LAYERED, at, [swap]) == ["lead1", "eve"]
    assert on_call(LAYERED, at, [cover, Override("fay", at, at + H)]) == ["fay", "ana"]
    # before the rotation starts an override still puts someone on call
    assert on_call(
        WEEKLY, ny(2026, 1, 1, 12), [Override("gus", ny(2026, 1, 1), ny(2026, 1, 2))]
    ) == ["gus"]


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        Override("x", ny(2026, 1, 2), ny(2026, 1, 1))
    with pytest.raises(ValueError, match="no time zone"):
        on_call(WEEKLY, datetime(2026, 3, 2, 9), [])
    bad_start = schedule({"kind": "weekly", "start": "next monday", "people": ["a"]})
    with pytest.raises(ValueError, match="not an ISO date-time"):
        on_call(bad_start, ny(2026, 3, 2, 9), [])
    with pytest.raises(ValueError, match="not an IANA time zone"):
        on_call(
            schedule({"start": "2026-01-05T09:00", "people": ["a"]}, tz="Nowhere/Town"),
            ny(2026, 3, 2, 9),
            [],
        )


ZONES = [
    "America/New_York",
    "Australia/Lord_Howe",
    "Europe/London",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Kolkata",
]


@settings(max_examples=scaled(150), deadline=None)
@given(
    st.sampled_from(ZONES),
    st.sampled_from(["daily", "weekly", "custom"]),
    st.integers(0, 23),
    st.integers(1, 5),
    st.integers(0, 400 * 24 * 60),
)
def test_shifts_follow_the_local_handoff_clock(
    zone: str, kind: str, hour: int, people: int, minutes: int
) -> None:
    tz = ZoneInfo(zone)
    layer: dict[str, object] = {
        "kind": kind,
        "start": f"2026-01-05T{hour:02d}:00",
        "people": [f"p{i}" for i in range(people)],
    }
    if kind == "custom":
        layer["every"] = "8h"
    sched = schedule(layer, tz=zone)
    at = datetime(2026, 1, 5, hour, tzinfo=tz) + timedelta(minutes=minutes)
    handoff = next_handoff(sched, at)
    assert handoff > at
    # the person changes exactly at the hand-off (when more than one person rotates)
    assert on_call(sched, handoff - timedelta(microseconds=1), []) == on_call(sched, at, [])
    if people > 1:
        assert on_call(sched, handoff, []) != on_call(sched, at, [])
    # hand-offs are at the local hand-off time, unless that time fell in a DST gap
    local = handoff.astimezone(tz)
    step = {"daily": 24 * 60, "weekly": 7 * 24 * 60, "custom": 8 * 60}[kind]
    wanted = datetime(2026, 1, 5, hour)
    wall = local.replace(tzinfo=None)
    shift = round((wall - wanted) / timedelta(minutes=1) / step)
    expected_wall = wanted + shift * timedelta(minutes=step)
    if wall != expected_wall:  # only a gap moves a hand-off: to the moment the clock jumps
        assert (
            (handoff - timedelta(microseconds=1)).astimezone(tz).replace(tzinfo=None)
            < expected_wall
            < wall
        )


# ---------------------------------------------------------------- shifts through a window


def test_shifts_follow_local_handoffs_across_dst_and_overrides() -> None:
    """``shifts`` (GET /v1/schedules/{name}/oncall): the weekly 09:00 hand-off stays at
    09:00 New York time across the March change (14:00 UTC before, 13:00 after); an
    override cuts a stretch and a stretch that changes nobody is one shift."""
    from escalade.oncall import shifts

    utc = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    cover = Override(person="dee", start=utc(2026, 3, 10, 0), end=utc(2026, 3, 11, 0))
    same = Override(person="cy", start=utc(2026, 3, 12, 0), end=utc(2026, 3, 13, 0))
    got = shifts(WEEKLY, utc(2026, 3, 1), utc(2026, 3, 17), [cover, same])
    assert [(s.start, s.end, s.people) for s in got] == [
        (utc(2026, 3, 1), utc(2026, 3, 2, 14), ("ana",)),
        (utc(2026, 3, 2, 14), utc(2026, 3, 9, 13), ("ben",)),  # DST began on 8 March
        (utc(2026, 3, 9, 13), utc(2026, 3, 10), ("cy",)),
        (utc(2026, 3, 10), utc(2026, 3, 11), ("dee",)),
        (utc(2026, 3, 11), utc(2026, 3, 16, 13), ("cy",)),  # cy's own override changes nobody
        (utc(2026, 3, 16, 13), utc(2026, 3, 17), ("ana",)),
    ]


def test_shifts_refuse_a_window_with_too_many() -> None:
    from escalade.oncall import TooManyShifts, shifts

    quarter_hours = schedule(
        {"kind": "custom", "every": "15m", "start": "2026-03-01T00:00", "people": ["ana", "ben"]}
    )
    start = datetime(2026, 3, 2, tzinfo=UTC)
    assert len(shifts(quarter_hours, start, start + timedelta(hours=2))) == 8
    with pytest.raises(TooManyShifts, match="more than 100 shifts"):
        shifts(quarter_hours, start, start + timedelta(days=2), limit=100)
    with pytest.raises(ValueError, match="end must be after start"):
        shifts(quarter_hours, start, start)
