"""Engine knobs, with the defaults ``serve`` and ``worker`` use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class EngineConfig:
    batch_size: int = 256
    """Most rows a step claims per pass (one transaction)."""
    lease: timedelta = timedelta(seconds=30)
    """How long a claim is held; a crashed worker's claims return after it."""
    late_tolerance: timedelta = timedelta(seconds=5)
    """A timer fired later than this after its due time is marked ``late``."""
    max_attempts: int = 10
    """Give up (state ``failed``) after this many failed attempts."""
    retry_base: timedelta = timedelta(seconds=5)
    retry_cap: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.lease <= timedelta(0):
            raise ValueError("lease must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
