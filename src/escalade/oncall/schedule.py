"""Who is on call at time t: rotations in local time, layers and overrides.

A rotation hands off at a local wall time: shift ``k`` starts at ``anchor + k × step`` in
the schedule's time zone, where the anchor is the rotation's ``start`` date at its
``handoff`` time (default: start's time) and the step is one day (daily), one week
(weekly) or ``every`` (custom). Stepping in wall time keeps a 09:00 hand-off at 09:00
local across DST; the shift that contains a DST change is an hour shorter or longer.
Wall times are mapped to instants as in ``sla.localtime`` (a gap time → the transition,
a repeated time → its first occurrence).

Layers: the last layer in the schedule is the highest; ``on_call`` lists the highest
first. Before a rotation's anchor its layer has nobody on call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    return None if k < 0 else rotation.people[k % len(rotation.people)]


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
