"""Time as a parameter: the one place that reads the wall clock.

Everything else is handed a ``Clock`` (or simply a ``datetime``). ``serve`` and ``worker``
use :class:`SystemClock`; ``simulate`` and the tests use :class:`VirtualClock`, which only
moves when told to, so nothing sleeps in real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of the current time, always UTC and time-zone aware."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock. The only caller of ``datetime.now`` in Escalade."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that stands still until moved: for simulate and tests."""

    def __init__(self, start: datetime) -> None:
        self._now = _aware_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (never backward) and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"a virtual clock only moves forward, not by {delta}")
        self._now = self._now + delta
        return self._now

    def set(self, t: datetime) -> datetime:
        """Jump to ``t`` (not before the current time) and return it."""
        t = _aware_utc(t)
        if t < self._now:
            raise ValueError(f"a virtual clock only moves forward: {t} is before {self._now}")
        self._now = t
        return self._now


def _aware_utc(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t} has no time zone; give times with an offset, e.g. +00:00")
    return t.astimezone(UTC)
