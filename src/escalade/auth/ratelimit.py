"""Rate limits: a token bucket per key (an API key's name, a client address, an e-mail
address being signed in as). Pure, with the time passed in.

A bucket holds ``burst`` requests and refills at ``per_minute`` a minute; a request that
finds it empty is refused with the seconds until a token is back (``Retry-After``). The
buckets live in the process: with several API processes each counts its own share (see
docs/auth.md), which bounds abuse without a round trip to the database per request.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Limit:
    per_minute: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"120/min"`` or ``"120/min,burst=40"``; a clear error otherwise."""
        head, _, rest = text.replace(" ", "").partition(",")
        number, slash, unit = head.partition("/")
        try:
            rate = float(number)
        except ValueError:
            rate = -1.0
        if not slash or unit not in ("min", "s", "h") or rate <= 0:
            raise ValueError(f"'{text}' is not a rate limit: write e.g. 120/min or 5/s")
        per_minute = rate * {"s": 60.0, "min": 1.0, "h": 1 / 60}[unit]
        burst = max(1, math.ceil(per_minute))
        if rest:
            key, _, value = rest.partition("=")
            if key != "burst" or not value.isdigit() or int(value) < 1:
                raise ValueError(f"'{text}': after the rate, only burst=N (N >= 1)")
            burst = int(value)
        return cls(per_minute, burst)


class RateLimiter:
    """Token buckets by key, for one limit. ``check`` takes a token or says how long to
    wait. Buckets full again are dropped, so memory stays bounded by active clients."""

    def __init__(self, limit: Limit, max_keys: int = 100_000) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, datetime]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def check(self, key: str, now: datetime) -> float | None:
        """None if allowed (a token is taken), else the seconds to wait."""
        rate = self.limit.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.limit.burst), now))
            elapsed = max(0.0, (now - last).total_seconds())
            tokens = min(float(self.limit.burst), tokens + elapsed * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self._max_keys:
                self._prune(now, rate)
            return None

    def _prune(self, now: datetime, rate: float) -> None:
        full = float(self.limit.burst)
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last).total_seconds() * rate >= full:
                del self._buckets[key]
