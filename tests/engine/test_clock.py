from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from escalade.clock import Clock, SystemClock, VirtualClock

START = datetime(2026, 3, 7, 23, 50, tzinfo=timezone(timedelta(hours=-5)))


def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(START)
    assert isinstance(clock, Clock)
    assert clock.now() == START and clock.now().tzinfo == UTC
    assert clock.advance(timedelta(minutes=15)) == START + timedelta(minutes=15)
    assert clock.set(START + timedelta(hours=1)) == START + timedelta(hours=1)
    assert clock.now() == START + timedelta(hours=1)


def test_virtual_clock_refuses_to_go_back_or_be_naive() -> None:
    clock = VirtualClock(START)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="forward"):
        clock.set(START - timedelta(seconds=1))
    with pytest.raises(ValueError, match="time zone"):
        VirtualClock(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    assert SystemClock().now().utcoffset() == timedelta(0)
