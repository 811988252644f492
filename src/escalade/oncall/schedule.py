"""Who is on call at time t: rotations in local time, layers and overrides.

A rotation hands off at a local wall time: shift ``k`` starts at ``anchor + k × step`` in
the schedule's time zone, where the anchor is the rotation's ``start`` date at its
``handoff`` time (default: start's time) and the step is one day (daily), one week
(weekly) or ``every`` (custom). Stepping in wall time keeps a 09:00 hand-off at 09:00
local across DST; the shift that contains a DST change is an hour shorter or longer.
Wall times are mapped to instants as in ``sla.localtime`` (a gap time → the transition,
a repeated time → its first occurrence).

A short rotation can have several hand-offs in one spring-forward gap (every 15 minutes:
02:00, 02:15, 02:30 and 02:45 do not exist); they would all map to the transition, together
with 03:00, and give shifts of zero length. Those boundaries are skipped, never the
people: the turns go on in order from the next hand-off that exists, so the person whose
turn would have vanished takes the next shift and everyone after follows one turn later.
In the fall-back the repeated hour simply makes one shift an hour longer.

Layers: the last layer in the schedule is the highest; ``on_call`` lists the highest
first. Before a rotation's anchor its layer has nobody on call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from escalade.policy.models import Rotation, Schedule
from escalade.sla.localtime import first_instant, require_aware, zone


@dataclass(frozen=True)
class Override:
    """``person`` is on call from ``start`` to ``end`` (UTC, half-open) in place of
    ``replaces`` where that person is on call, or of the highest layer's person when
    ``replaces`` is None. Later overrides in the list win where they overlap."""

    person: str
    start: datetime
    end: datetime
    replaces: str | None = None

    def __post_init__(self) -> None:
        start = require_aware(self.start, "override start")
        end = require_aware(self.end, "override end")
        if end <= start:
            raise ValueError(f"override for {self.person}: end must be after start")

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


def _anchor(rotation: Rotation) -> datetime:
    """The first hand-off as a naive local wall time."""
    try:
        start = datetime.fromisoformat(rotation.start)
    except ValueError as exc:
        raise ValueError(
            f"rotation start '{rotation.start}' is not an ISO date-time, e.g. 2026-01-05T09:00"
        ) from exc
    start = start.replace(tzinfo=None)  # written in the schedule's local time
    if rotation.handoff is not None:
        start = datetime.combine(start.date(), rotation.handoff)
    return start


def _step(rotation: Rotation) -> timedelta:
    if rotation.kind == "daily":
        return timedelta(days=1)
    if rotation.kind == "weekly":
        return timedelta(weeks=1)
    if rotation.every is None or rotation.every <= timedelta(0):
        raise ValueError("a 'custom' rotation needs a positive 'every'")
    return rotation.every


# No DST gap is longer than this (the longest on record is Samoa's skipped day in 2011):
# rotations with a longer step can never have two hand-offs in one gap.
_LONGEST_GAP = timedelta(hours=48)
_SECOND = timedelta(seconds=1)


@lru_cache(maxsize=8192)
def _gaps_in_year(key: str, year: int) -> tuple[tuple[datetime, datetime], ...]:
    """The wall times that do not exist in zone ``key`` because of a transition in UTC year
    ``year``: naive local ``[start, end)`` pairs (``end`` is what the clock shows after)."""
    tz = ZoneInfo(key)
    t = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    before = t.astimezone(tz).utcoffset()
    gaps = []
    while t < end:
        day_end = min(t + timedelta(days=1), end)
        after = day_end.astimezone(tz).utcoffset()
        if after != before:
            # bisect on whole seconds for the transition instant in (t, day_end]
            lo, hi = 0, int((day_end - t) / _SECOND)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (t + mid * _SECOND).astimezone(tz).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            transition = (t + hi * _SECOND).replace(tzinfo=None)
            if before is not None and after is not None and after > before:
                gaps.append((transition + before, transition + after))
            before = after
        t = day_end
    return tuple(gaps)


def _skipped_before(rotation: Rotation, tz: ZoneInfo, k: int) -> int:
    """How many of the hand-offs 0 … k−1 are skipped: boundary ``i`` is skipped when its
    wall time lies in a DST gap and so does boundary ``i + 1`` (or it is the gap's end):
    both start at the transition instant, so shift ``i`` would last no time at all."""
    step = _step(rotation)
    if k <= 0 or step > _LONGEST_GAP:
        return 0
    anchor = _anchor(rotation)
    last = anchor + (k - 1) * step
    skipped = 0
    for year in range(anchor.year - 1, last.year + 2):
        for start, end in _gaps_in_year(tz.key, year):
            # boundaries i with start <= anchor + i*step <= end - step
            first = max(0, -((anchor - start) // step))
            final = min(k - 1, (end - step - anchor) // step) if end - step >= start else -1
            if final >= first:
                skipped += final - first + 1
    return skipped


def _boundary(rotation: Rotation, tz: ZoneInfo, k: int) -> datetime:
    """The UTC instant shift ``k`` starts."""
    return first_instant(_anchor(rotation) + k * _step(rotation), tz)


def _shift_index(rotation: Rotation, tz: ZoneInfo, at: datetime) -> int:
    """The shift containing ``at`` (−1 before the rotation's first hand-off)."""
    if at < _boundary(rotation, tz, 0):
        return -1
    local = at.astimezone(tz).replace(tzinfo=None)
    k = max(0, (local - _anchor(rotation)) // _step(rotation))
    # The wall-time estimate can be one off around a DST change: settle it on instants.
    while k > 0 and _boundary(rotation, tz, k) > at:
        k -= 1
    while _boundary(rotation, tz, k + 1) <= at:
        k += 1
    return k


def layer_on_call(rotation: Rotation, tz: ZoneInfo, at: datetime) -> str | None:
    """The person one rotation puts on call at ``at``, or None before it starts."""
    k = _shift_index(rotation, tz, require_aware(at))
    if k < 0:
        return None
    turn = k - _skipped_before(rotation, tz, k)  # zero-length shifts take no turn
    return rotation.people[turn % len(rotation.people)]


def on_call(schedule: Schedule, at: datetime, overrides: Sequence[Override] = ()) -> list[str]:
    """Person ids on call at ``at`` across layers, highest layer first, without repeats."""
    at = require_aware(at)
    tz = zone(schedule.timezone)
    people = [
        person
        for rotation in reversed(schedule.layers)
        if (person := layer_on_call(rotation, tz, at)) is not None
    ]
    for override in overrides:
        if not override.covers(at):
            continue
        if override.replaces is None:
            people[:1] = [override.person]
        else:
            people = [override.person if p == override.replaces else p for p in people]
    return list(dict.fromkeys(people))


def next_handoff(schedule: Schedule, after: datetime) -> datetime:
    """The first hand-off in any layer strictly after ``after`` (UTC)."""
    after = require_aware(after, "after")
    tz = zone(schedule.timezone)
    candidates = []
    for rotation in schedule.layers:
        k = _shift_index(rotation, tz, after) + 1
        while (boundary := _boundary(rotation, tz, k)) <= after:  # zero-length shifts
            k += 1
        candidates.append(boundary)
    return min(candidates).astimezone(UTC)


@dataclass(frozen=True)
class Shift:
    """Who is on call (highest layer first) from ``start`` to ``end`` (UTC, half-open)."""

    start: datetime
    end: datetime
    people: tuple[str, ...]


class TooManyShifts(ValueError):
    """A window holds more shifts than the caller allows."""


def shifts(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    overrides: Sequence[Override] = (),
    *,
    limit: int = 2000,
) -> list[Shift]:
    """Who is on call through ``[start, end)``: one entry per stretch with the same people
    (hand-offs of every layer and the starts and ends of ``overrides`` cut stretches; a
    hand-off that changes nobody does not). More than ``limit`` stretches: TooManyShifts."""
    start = require_aware(start, "start").astimezone(UTC)
    end = require_aware(end, "end").astimezone(UTC)
    if end <= start:
        raise ValueError("end must be after start")
    cuts = {t for o in overrides for t in (o.start, o.end) if start < t < end}
    t = start
    while (t := next_handoff(schedule, t)) < end:
        cuts.add(t)
        if len(cuts) > 4 * limit:
            raise TooManyShifts(f"more than {limit} shifts: ask for a shorter window")
    out: list[Shift] = []
    edges = [start, *sorted(cuts), end]
    for a, b in pairwise(edges):
        people = tuple(on_call(schedule, a, overrides))
        if out and out[-1].people == people:
            out[-1] = Shift(out[-1].start, b, people)
            continue
        if len(out) == limit:
            raise TooManyShifts(f"more than {limit} shifts: ask for a shorter window")
        out.append(Shift(a, b, people))
    return out
