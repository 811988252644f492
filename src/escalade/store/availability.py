"""Whether an error means "the database is unavailable or busy, try again later".

The API answers such errors with 503 and ``Retry-After``; the engine backs off. Anything
else is a bug and is reported as one. Classified by the exception's classes (and its
causes), so that importing this module loads no database driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from escalade.store.interface import ConcurrentUpdate, StoreError, TransientConflict

BUSY_RETRY_AFTER_SECONDS = 1
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

# SQLAlchemy's "could not talk to the database" errors, by module and class name
_UNAVAILABLE = {
    ("sqlalchemy.exc", "OperationalError"),
    ("sqlalchemy.exc", "InterfaceError"),
    ("psycopg", "OperationalError"),
    ("psycopg", "InterfaceError"),
    ("sqlite3", "OperationalError"),
}
_BUSY = {("sqlalchemy.exc", "TimeoutError")}  # no pooled connection free in time
# driver errors that mean "another transaction is in the way": busy, not down
_BUSY_DRIVER = {"SerializationFailure", "DeadlockDetected", "LockNotAvailable"}
_BUSY_TEXT = ("database is locked", "database table is locked", "database is busy")


@dataclass(frozen=True)
class Outage:
    """The database cannot serve now: ``kind`` is ``busy`` or ``unavailable``."""

    kind: str
    reason: str
    retry_after: int

    @property
    def message(self) -> str:
        what = "busy" if self.kind == "busy" else "unavailable"
        return f"the database is {what} ({self.reason}); retry after {self.retry_after} s"


def _names(exc: BaseException) -> set[tuple[str, str]]:
    return {(cls.__module__.split(".errors")[0], cls.__name__) for cls in type(exc).__mro__}


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def database_outage(exc: BaseException) -> Outage | None:
    """An ``Outage`` when ``exc`` (or what caused it) is the database being unavailable
    or busy; None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        outage = _classify(current)
        if outage is not None:
            return outage
        current = current.__cause__ or current.__context__
    return None


def _classify(exc: BaseException) -> Outage | None:
    names = _names(exc)
    reason = _first_line(exc)
    if names & _BUSY or isinstance(exc, ConcurrentUpdate | TransientConflict):
        # also: a use case that lost its race on every one of its attempts
        return Outage("busy", reason, BUSY_RETRY_AFTER_SECONDS)
    if isinstance(exc, StoreError) or names & _UNAVAILABLE:
        orig = getattr(exc, "orig", None)
        driver = type(orig).__name__ if orig is not None else type(exc).__name__
        if driver in _BUSY_DRIVER or any(t in reason.lower() for t in _BUSY_TEXT):
            return Outage("busy", reason, BUSY_RETRY_AFTER_SECONDS)
        return Outage("unavailable", reason, UNAVAILABLE_RETRY_AFTER_SECONDS)
    return None


__all__ = ["Outage", "database_outage"]
