"""Liveness and readiness.

``/healthz`` says the process is up (it touches nothing else); ``/readyz`` says it can do
its work now: the database answers (on SQLite: a write transaction can start), its schema
is the newest this release ships, and the engine, when this process runs one, is
running rather than backing off. Each probe is bounded (``PROBE_TIMEOUT_SECONDS``) so that
a locked or unreachable database makes ``/readyz`` fail fast rather than hang.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from escalade.engine.runner import Engine
from escalade.store import Store
from escalade.store.availability import database_outage

PROBE_TIMEOUT_SECONDS = 1.0


@dataclass
class Readiness:
    """Each check's outcome, and the failing ones as error entries."""

    checks: dict[str, str] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # check, msg, type

    @property
    def ready(self) -> bool:
        return not self.failures

    def ok(self, check: str, text: str) -> None:
        self.checks[check] = text

    def fail(self, check: str, msg: str, kind: str) -> None:
        self.checks[check] = msg
        self.failures.append((check, msg, kind))


@cache
def _head_revision() -> str | None:
    from escalade.store.migrate import head_revision

    return head_revision()


def _schema_revision(store: Store) -> str | None:
    """The schema revision, read on a raw connection with a short lock wait (it never
    waits for the engine's or the API's write locks longer than the probe timeout)."""
    from escalade.store.db import SqlStore

    assert isinstance(store, SqlStore)
    raw: Any = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if store.dialect == "sqlite":
            cursor.execute("PRAGMA busy_timeout")
            before = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA busy_timeout={int(PROBE_TIMEOUT_SECONDS * 1000)}")
            try:
                cursor.execute("BEGIN IMMEDIATE")  # what every write needs
                cursor.execute("SELECT version_num FROM alembic_version")
                row = cursor.fetchone()
                cursor.execute("ROLLBACK")
            finally:
                cursor.execute(f"PRAGMA busy_timeout={int(before)}")
        else:
            cursor.execute(f"SET LOCAL statement_timeout = {int(PROBE_TIMEOUT_SECONDS * 1000)}")
            cursor.execute("SELECT version_num FROM alembic_version")
            row = cursor.fetchone()
            raw.rollback()
        return str(row[0]) if row else None
    finally:
        raw.close()


def check_database(store: Store | None, readiness: Readiness) -> None:
    if store is None:
        readiness.ok("database", "none (routing only)")
        return
    if store.dialect not in ("sqlite", "postgresql"):
        readiness.ok("database", f"{store.dialect} (in process)")
        readiness.ok("migrations", "not needed")
        return
    try:
        revision = _schema_revision(store)
    except Exception as exc:
        outage = database_outage(exc)
        if outage is None:  # e.g. no alembic_version table: never migrated
            readiness.ok("database", "reachable")
            readiness.fail(
                "migrations",
                f"the schema cannot be read ({type(exc).__name__}): run escalade db upgrade",
                "migrations_behind",
            )
            return
        readiness.fail(
            "database", f"the database is {outage.kind}: {outage.reason}", "database_" + outage.kind
        )
        return
    readiness.ok("database", "reachable")
    head = _head_revision()
    if revision != head:
        readiness.fail(
            "migrations",
            f"the schema is at {revision or 'empty'}, not {head}: run escalade db upgrade",
            "migrations_behind",
        )
    else:
        readiness.ok("migrations", f"current ({head})")


def check_engine(
    engine: Engine | None, thread: threading.Thread | None, readiness: Readiness
) -> None:
    if engine is None:
        readiness.ok("engine", "not in this process")
        return
    status = engine.status
    if thread is None or not thread.is_alive():
        readiness.fail("engine", "the engine thread is not running", "engine_stopped")
    elif status.state == "stopped":
        readiness.fail("engine", "the engine is starting", "engine_starting")
    elif not status.healthy:
        readiness.fail("engine", f"the engine is backing off: {status.state}", "engine_backing_off")
    else:
        readiness.ok("engine", "running")


def readiness(
    store: Store | None, engine: Engine | None, thread: threading.Thread | None
) -> Readiness:
    result = Readiness()
    check_database(store, result)
    check_engine(engine, thread, result)
    return result


__all__ = ["PROBE_TIMEOUT_SECONDS", "Readiness", "readiness"]
