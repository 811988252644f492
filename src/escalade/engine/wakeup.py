"""When new work becomes due: a use case notes the due times of the timers and messages it
schedules (``note_due``, in the thread that runs it); after its commit, ``Engine.wake``
takes the earliest (``take_due``) and wakes the engine only if that is sooner than the
engine's next wake. A request that schedules nothing new wakes nothing.

Thread-local on purpose: an API request runs its use case, commits and calls ``wake`` in
one thread, so each request hands over exactly its own due times.
"""

from __future__ import annotations

import threading
from datetime import datetime

_local = threading.local()


def note_due(at: datetime) -> None:
    """Something committed (or about to be) in this thread becomes due at ``at``."""
    due: datetime | None = getattr(_local, "due", None)
    if due is None or at < due:
        _local.due = at


def take_due() -> datetime | None:
    """The earliest due time noted in this thread since the last call (and forget it)."""
    due: datetime | None = getattr(_local, "due", None)
    _local.due = None
    return due


__all__ = ["note_due", "take_due"]
