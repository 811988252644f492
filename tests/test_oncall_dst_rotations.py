"""Rotations across DST never skip a person (issue 15, item 6).

A spring-forward gap can hold several hand-offs of a short rotation (every 15 minutes:
02:00 … 02:45 do not exist); the boundaries that do not exist are skipped, never the
person whose turn it is. Property: over 24 zones and rotations of 15 min, 1 h, 8 h, 1 d and
1 w, around each zone's spring-forward and fall-back, the people on call follow the
rotation's order one hand-off after another: nobody is skipped, nobody comes twice in a
row, and every shift lasts some time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalade.oncall import next_handoff, on_call
from escalade.policy.models import Rotation, Schedule
from soak import scaled

ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/St_Johns",  # −3:30
    "America/Havana",  # springs forward at midnight
    "America/Santiago",
    "America/Asuncion",
    "America/Sao_Paulo",  # no DST since 2019
    "Europe/London",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Europe/Chisinau",
    "Africa/Casablanca",  # Ramadan transitions
    "Asia/Gaza",
    "Asia/Beirut",  # springs forward at midnight
    "Asia/Kolkata",  # no DST
    "Asia/Tehran",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute DST change
    "Australia/Adelaide",  # +9:30/+10:30
    "Pacific/Auckland",
    "Pacific/Chatham",  # +12:45/+13:45
    "Antarctica/Troll",  # a two-hour DST change
]
STEPS = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "8h": timedelta(hours=8),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
}
YEARS = range(2024, 2029)


@cache
def transitions(zone: str, year: int) -> list[datetime]:
    """UTC instants (to the minute) where the zone's offset changes, found by scanning."""
    tz = ZoneInfo(zone)
    out = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    prev = t.astimezone(tz).utcoffset()
    while t.year == year:
        nxt = t + timedelta(hours=1)
        off = nxt.astimezone(tz).utcoffset()
        if off != prev:
            m = t
            while m.astimezone(tz).utcoffset() == prev:
                m += timedelta(minutes=1)
            out.append(m)
            prev = off
        t = nxt
    return out


def rotation_schedule(zone: str, every: str, start: datetime, people: int) -> Schedule:
    layer = {
        "kind": "custom",
        "every": every,
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "people": [f"p{i}" for i in range(people)],
    }
    return Schedule(id="s", timezone=zone, layers=[Rotation.model_validate(layer)])


def assert_turns_in_order(sched: Schedule, start: datetime, end: datetime) -> int:
    """Walk every hand-off from ``start`` to ``end``; returns how many there were."""
    people = sched.layers[0].people
    t = start
    [who] = on_call(sched, t)
    count = 0
    while t < end:
        handoff = next_handoff(sched, t)
        assert handoff > t, "a hand-off must move time forward"
        assert on_call(sched, handoff - timedelta(microseconds=1)) == [who]
        [nxt] = on_call(sched, handoff)
        expected = people[(people.index(who) + 1) % len(people)]
        assert nxt == expected, (
            f"{sched.timezone}, every {sched.layers[0].every}: at {handoff.isoformat()} "
            f"({handoff.astimezone(ZoneInfo(sched.timezone)).isoformat()}) {nxt} took over "
            f"from {who}; {expected} was next"
        )
        who, t = nxt, handoff
        count += 1
    return count


@settings(max_examples=scaled(250), deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    every=st.sampled_from(sorted(STEPS)),
    year=st.sampled_from(YEARS),
    which=st.integers(0, 7),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45, 7]),
    days_before=st.integers(1, 30),
    people=st.integers(2, 7),
)
def test_no_person_is_skipped_across_dst(
    zone: str,
    every: str,
    year: int,
    which: int,
    hour: int,
    minute: int,
    days_before: int,
    people: int,
) -> None:
    tz = ZoneInfo(zone)
    found = transitions(zone, year)
    around = found[which % len(found)] if found else datetime(year, 3, 29, 1, tzinfo=UTC)
    step = STEPS[every]
    local = around.astimezone(tz).replace(tzinfo=None)
    anchor = datetime.combine(local.date(), datetime.min.time()).replace(hour=hour, minute=minute)
    anchor -= timedelta(days=days_before)
    sched = rotation_schedule(zone, every, anchor, people)
    span = max(3 * step, timedelta(hours=6))
    first_handoff = next_handoff(sched, datetime(1970, 1, 1, tzinfo=UTC))
    start = max(around - span, first_handoff)
    assert assert_turns_in_order(sched, start, around + span) >= 1


@pytest.mark.parametrize("every", ["15m", "30m", "1h"])
def test_spring_forward_in_new_york_skips_boundaries_not_people(every: str) -> None:
    people = 7
    sched = rotation_schedule("America/New_York", every, datetime(2026, 3, 7), people)
    # 2026-03-08: 02:00 EST → 03:00 EDT; 06:00 UTC is 01:00 EST, 08:00 UTC is 04:00 EDT
    assert assert_turns_in_order(
        sched, datetime(2026, 3, 8, 6, tzinfo=UTC), datetime(2026, 3, 8, 8, tzinfo=UTC)
    ) == 2 * timedelta(hours=1) // STEPS.get(every, timedelta(minutes=30))
    # the boundary after the gap is 03:00 EDT, and the turn goes to the next person
    before = on_call(sched, datetime(2026, 3, 8, 6, 59, tzinfo=UTC))  # 01:59 EST
    after = on_call(sched, datetime(2026, 3, 8, 7, 0, tzinfo=UTC))  # 03:00 EDT
    names = [f"p{i}" for i in range(people)]
    assert names.index(after[0]) == (names.index(before[0]) + 1) % people


def test_fall_back_makes_one_shift_an_hour_longer() -> None:
    sched = rotation_schedule("America/New_York", "1h", datetime(2026, 10, 31), 5)
    # 2026-11-01: 02:00 EDT → 01:00 EST; the 01:00 shift runs 01:00 EDT … 02:00 EST
    start = datetime(2026, 11, 1, 5, tzinfo=UTC)  # 01:00 EDT
    assert next_handoff(sched, start) == datetime(2026, 11, 1, 7, tzinfo=UTC)  # 02:00 EST
    assert assert_turns_in_order(sched, start, datetime(2026, 11, 1, 10, tzinfo=UTC)) == 4
