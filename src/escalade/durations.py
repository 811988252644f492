"""Durations as people write them in policies and scenarios: ``90s``, ``15m``, ``1h30m``, ``2d``.

A duration is parsed once at the edge into a :class:`datetime.timedelta`; the rest of the
code never sees the text. ``immediate`` and ``0`` mean zero.
"""

from __future__ import annotations

import re
from datetime import timedelta

from escalade.errors import EscaladeError

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|min|s)", re.IGNORECASE)
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:w|d|h|m|min|s)\s*)+$", re.IGNORECASE)
_UNIT = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_ZERO_WORDS = {"0", "immediate", "immediately", "none"}


class DurationError(EscaladeError, ValueError):
    """A duration text that cannot be read."""


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``"1h30m"``-style text into a timedelta.

    Plain numbers are refused (is ``30`` minutes or seconds?) except ``0``.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise DurationError(f"expected a duration such as '15m' or '4h', got {text!r}")
    if isinstance(text, (int, float)):
        if text == 0:
            return timedelta(0)
        raise DurationError(
            f"a bare number ({text}) is ambiguous: write a unit, e.g. '{text}m' or '{text}h'"
        )
    raw = str(text).strip()
    if raw.lower() in _ZERO_WORDS:
        return timedelta(0)
    if not _WHOLE.match(raw):
        raise DurationError(
            f"'{raw}' is not a duration: use a number and a unit (s, m, h, d, w), e.g. '15m', "
            "'1h30m', '2d'"
        )
    total = timedelta(0)
    for amount, unit in _PART.findall(raw):
        total += _UNIT[unit.lower()] * float(amount)
    return total


def format_duration(delta: timedelta) -> str:
    """The shortest readable text for a duration: ``1h30m``, ``2d``, ``45s``."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0m"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
