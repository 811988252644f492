"""Local wall time ↔ UTC instants, the one place that deals with DST gaps and folds.

Working hours and rotation hand-offs are written in local wall time ("09:00"). A wall time
may not exist (spring-forward gap) or may happen twice (fall-back fold). We map a wall time
to *the first instant at which the local clock shows that time or later*:

- an ordinary wall time → its only instant;
- a repeated wall time (fold) → its first occurrence (``fold=0``);
- a wall time in a gap → the transition instant, when the clock jumps past it.

This map is monotonic in the wall time, so windows built from it never overlap or reorder.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SECOND = timedelta(seconds=1)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or a ValueError that says what is wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"'{name}' is not an IANA time zone (e.g. America/New_York)") from exc


def require_aware(t: datetime, what: str = "time") -> datetime:
    """``t`` in UTC; a ValueError for a naive datetime (we never guess a zone)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} {t.isoformat()} has no time zone: give a tz-aware datetime")
    return t.astimezone(UTC)


def wall_date(t: datetime, tz: ZoneInfo) -> date:
    """The local calendar date of the instant ``t``."""
    return t.astimezone(tz).date()


def first_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first UTC instant at which the clock in ``tz`` shows ``wall`` (naive) or later."""
    u0 = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if u0.astimezone(tz).replace(tzinfo=None) == wall:
        return u0  # exists; fold=0 is the first occurrence when it repeats
    # In a gap: the answer is the transition instant, between the two readings of `wall`.
    u1 = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(u0, u1), max(u0, u1)  # wall(lo) < wall <= wall(hi)

    def reached(t: datetime) -> bool:
        return t.astimezone(tz).replace(tzinfo=None) >= wall

    if reached(lo):  # pragma: no cover - defensive: tz data with odd offsets
        return lo
    # Transitions fall on whole seconds: bisect on seconds, keeping reached(hi).
    lo_s, hi_s = 0, int((hi - lo) / _SECOND) + 1
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if reached(lo + mid * _SECOND):
            hi_s = mid
        else:
            lo_s = mid
    return lo + hi_s * _SECOND
