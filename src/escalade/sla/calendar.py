"""Business time: when a policy calendar is open, and arithmetic on working time.

A :class:`BusinessCalendar` is built from a policy :class:`~escalade.policy.models.Calendar`.
Every input and output is a tz-aware datetime in UTC; local time exists only inside, to
turn each local date's working hours into UTC *windows* (see ``sla.localtime`` for gaps
and folds). Working time is real elapsed time inside those windows, so a window that spans
a spring-forward gap is an hour shorter and one that spans a fall-back fold an hour longer
(docs/adr/0002-business-time.md).

Arithmetic walks window by window, never minute by minute, and skips closed days with one
dictionary look-up each; a calendar that stays closed for three years raises
:class:`NoWorkingTime` rather than looping.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from escalade.errors import EscaladeError
from escalade.policy.models import WEEKDAYS, Calendar
from escalade.sla.localtime import first_instant, require_aware, wall_date, zone

Window = tuple[datetime, datetime]
"""A half-open UTC interval [start, end) of working time."""

MAX_CLOSED_DAYS = 3 * 366
"""Searching further than this many consecutive closed days means there is no open time."""

_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_CACHE_LIMIT = 20_000


class NoWorkingTime(EscaladeError, ValueError):
    """A calendar has no open time in the span searched."""


@lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """Public holidays of one year, from the ``holidays`` package (cached per year)."""
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def _check_holiday_source(country: str, subdivision: str | None) -> None:
    try:
        holidays.country_holidays(country, subdiv=subdivision, years=[])
    except NotImplementedError as exc:
        where = f"{country}/{subdivision}" if subdivision else country
        raise ValueError(f"holidays for '{where}' are not known: {exc}") from exc


class BusinessCalendar:
    """Working time of one policy calendar: ``is_open``, ``add``, ``elapsed``, ``next_open``."""

    def __init__(self, calendar: Calendar) -> None:
        self.id = calendar.id
        self.always = calendar.always
        self.tz = zone(calendar.timezone)
        self._weekly: dict[int, list[tuple[time, time, bool]]] = {
            WEEKDAYS.index(day): [(r.start, r.end, r.until_midnight) for r in ranges]
            for day, ranges in calendar.weekly.items()
        }
        if not self.always and not any(self._weekly.values()):
            raise NoWorkingTime(f"calendar '{calendar.id}' has no working hours")
        self._holiday_sources = [(h.country.upper(), h.subdivision) for h in calendar.holidays]
        for country, subdivision in self._holiday_sources:
            _check_holiday_source(country, subdivision)
        self._closed = frozenset(calendar.closed)
        self._days: dict[date, tuple[Window, ...]] = {}

    @classmethod
    def twenty_four_seven(cls, calendar_id: str = "24/7") -> BusinessCalendar:
        """A calendar that is always open, in UTC."""
        return cls(Calendar(id=calendar_id.replace("/", "-"), timezone="UTC", always=True))

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.id!r}, tz={self.tz.key!r}, always={self.always})"

    # ------------------------------------------------------------------ days and windows

    def is_closed_day(self, day: date) -> bool:
        """A local date with no working hours at all: closed date or public holiday."""
        if day in self._closed:
            return True
        return any(
            day in _holiday_dates(country, subdivision, day.year)
            for country, subdivision in self._holiday_sources
        )

    def day_windows(self, day: date) -> tuple[Window, ...]:
        """The UTC working windows of one local date, sorted and merged."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        windows: list[Window] = []
        if not self.is_closed_day(day):
            for start, end, until_midnight in self._weekly.get(day.weekday(), ()):
                end_day = day + _DAY if until_midnight else day
                ws = first_instant(datetime.combine(day, start), self.tz)
                we = first_instant(datetime.combine(end_day, end), self.tz)
                if we > ws:  # a window wholly inside a DST gap has no time in it
                    windows.append((ws, we))
        windows.sort()
        merged: list[Window] = []
        for ws, we in windows:
            if merged and ws <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], we))
            else:
                merged.append((ws, we))
        if len(self._days) >= _CACHE_LIMIT:
            self._days.clear()
        result = self._days[day] = tuple(merged)
        return result

    def windows_after(self, t: datetime) -> Iterator[Window]:
        """Working windows that end after ``t``, in order (the first may contain ``t``).

        Raises :class:`NoWorkingTime` after ``MAX_CLOSED_DAYS`` days in a row without any.
        """
        t = require_aware(t)
        if self.always:
            raise ValueError("a 24/7 calendar has one endless window; use add/elapsed")
        day = wall_date(t, self.tz) - _DAY  # a window of the day before may still be open
        closed_run = 0
        while True:
            found = False
            for ws, we in self.day_windows(day):
                found = True
                if we > t:
                    yield ws, we
            closed_run = 0 if found else closed_run + 1
            if closed_run > MAX_CLOSED_DAYS:
                raise NoWorkingTime(
                    f"calendar '{self.id}' has no working hours in the {MAX_CLOSED_DAYS} days "
                    f"after {day - timedelta(days=closed_run - 1)}: check its weekly hours, "
                    "holidays and closed dates"
                )
            day += _DAY

    # ------------------------------------------------------------------ questions

    def is_open(self, t: datetime) -> bool:
        """Is ``t`` inside working hours?"""
        t = require_aware(t)
        if self.always:
            return True
        day = wall_date(t, self.tz)
        return any(
            ws <= t < we for d in (day - _DAY, day, day + _DAY) for ws, we in self.day_windows(d)
        )

    def next_open(self, t: datetime) -> datetime:
        """``t`` if the calendar is open then, else the next instant it opens."""
        t = require_aware(t)
        if self.always:
            return t
        ws, _ = next(self.windows_after(t))
        return max(ws, t)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of working time has elapsed after ``start``.

        The result is inside an open window or exactly at the end of one (when the duration
        uses a window up to its last instant). A zero duration returns ``start``.
        """
        start = require_aware(start, "start")
        if duration < _ZERO:
            raise ValueError(f"cannot add a negative working time ({duration})")
        if self.always or duration == _ZERO:
            return start + duration
        remaining = duration
        for ws, we in self.windows_after(start):
            begin = max(ws, start)
            available = we - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: windows_after never ends")  # pragma: no cover

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (negative when ``end`` is before ``start``)."""
        start, end = require_aware(start, "start"), require_aware(end, "end")
        if end < start:
            return -self.elapsed(end, start)
        if self.always:
            return end - start
        total = _ZERO
        day, last = wall_date(start, self.tz) - _DAY, wall_date(end, self.tz) + _DAY
        while day <= last:
            for ws, we in self.day_windows(day):
                lo, hi = max(ws, start), min(we, end)
                if hi > lo:
                    total += hi - lo
            day += _DAY
        return total

    def open_windows(self, start: datetime, end: datetime) -> list[Window]:
        """The working windows between two instants, clipped to them (for display)."""
        start, end = require_aware(start, "start"), require_aware(end, "end")
        if end <= start:
            return []
        if self.always:
            return [(start, end)]
        out: list[Window] = []
        day, last = wall_date(start, self.tz) - _DAY, wall_date(end, self.tz) + _DAY
        while day <= last:
            for ws, we in self.day_windows(day):
                lo, hi = max(ws, start), min(we, end)
                if hi > lo:
                    out.append((lo, hi))
            day += _DAY
        return out
