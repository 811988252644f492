"""``SqlStore``: the database behind Escalade, and the unit of work that changes it.

An ``SqlStore`` is built from a URL and connects lazily, never at import::

    store = SqlStore.from_settings(settings)   # or SqlStore("sqlite:///./escalade.db")
    store.upgrade()                            # apply migrations
    with store.unit_of_work() as uow:
        esc = uow.escalations.get_by_ref("ESC-1")
        uow.timeline.append(esc.id, at=now, actor="lena", kind="acknowledged")
        uow.commit()                           # nothing is kept without commit

SQLite is the embedded default: WAL, a busy timeout, foreign keys on, and every unit of
work starts with ``BEGIN IMMEDIATE`` (one writer at a time, no upgrade deadlocks).
PostgreSQL (``postgresql+psycopg://…``) is how it grows: many workers share the timers
with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy.exc
from sqlalchemy import Connection, CursorResult, Engine, Executable, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.util.typing import TupleAny, Unpack

from escalade.errors import IntegrityViolation
from escalade.store import interface
from escalade.store.interface import DEFAULT_DATABASE_URL, StoreError, TransientConflict
from escalade.store.jsonvalues import dumps as _dumps
from escalade.store.repositories import (
    SqlActionLedger,
    SqlActivityRepository,
    SqlAlertKeyRepository,
    SqlApiKeyRepository,
    SqlAuditRepository,
    SqlDeliveryRepository,
    SqlEscalationRepository,
    SqlGroupRepository,
    SqlKeyLocks,
    SqlOutboxRepository,
    SqlOverrideRepository,
    SqlPolicyRepository,
    SqlTimelineRepository,
    SqlTimerRepository,
    SqlUserRepository,
)

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a write waits for SQLite's one writer lock


def sqlite_busy_timeout_ms() -> int:
    """``$ESCALADE_SQLITE_BUSY_TIMEOUT_MS`` (read when an engine is built), else 30 s; after
    it a locked database is an error (the API answers 503 with ``Retry-After``)."""
    value = os.environ.get("ESCALADE_SQLITE_BUSY_TIMEOUT_MS", "").strip()
    if not value:
        return SQLITE_BUSY_TIMEOUT_MS
    if not value.isdigit():
        raise StoreError(
            f"ESCALADE_SQLITE_BUSY_TIMEOUT_MS is '{value}': give milliseconds, e.g. 30000"
        )
    return int(value)


class HasDatabaseUrl(Protocol):
    @property
    def database_url(self) -> str: ...


class DeferringConnection:
    """The unit of work's connection as its repositories see it: writes held back with
    ``defer`` are sent before any other statement runs, so every statement sees them."""

    __slots__ = ("_deferred", "_flushing", "dialect", "raw")

    def __init__(self, raw: Connection) -> None:
        self.raw = raw
        self.dialect = raw.dialect
        self._deferred: list[interface.Deferred] = []
        self._flushing = False

    def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[Unpack[TupleAny]]:
        if self._deferred and not self._flushing:
            self.flush()
        return self.raw.execute(statement, parameters)

    def defer(self, pending: interface.Deferred) -> None:
        self._deferred.append(pending)

    def flush(self) -> None:
        self._flushing = True
        try:
            while self._deferred:
                batch, self._deferred = self._deferred, []
                for pending in batch:
                    pending.flush()
        finally:
            self._flushing = False

    def discard(self, keep: int = 0) -> None:
        """Forget what was deferred after the first ``keep``."""
        dropped, self._deferred = self._deferred[keep:], self._deferred[:keep]
        for pending in dropped:
            pending.discard()


class SqlUnitOfWork(interface.UnitOfWork):
    """One database transaction and the SQL repositories that work in it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        conn = self._conn = DeferringConnection(connection)
        self.policies = SqlPolicyRepository(conn)
        self.escalations = SqlEscalationRepository(conn)
        self.timeline = SqlTimelineRepository(conn)
        self.timers = SqlTimerRepository(conn)
        self.outbox = SqlOutboxRepository(conn)
        self.deliveries = SqlDeliveryRepository(conn)
        self.activity = SqlActivityRepository(conn)
        self.alert_keys = SqlAlertKeyRepository(conn)
        self.actions = SqlActionLedger(conn)
        self.locks = SqlKeyLocks(conn)
        self.groups = SqlGroupRepository(conn)
        self.users = SqlUserRepository(conn)
        self.api_keys = SqlApiKeyRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.overrides = SqlOverrideRepository(conn)

    def defer(self, pending: interface.Deferred) -> None:
        self._conn.defer(pending)

    def flush(self) -> None:
        self._conn.flush()

    def commit(self) -> None:
        self._conn.flush()
        self.connection.commit()

    def rollback(self) -> None:
        self._conn.discard()
        self.connection.rollback()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo only what happens inside the block if it raises (writes it deferred
        included)."""
        self._conn.flush()
        try:
            with self.connection.begin_nested():
                yield
                self._conn.flush()
        except BaseException:
            self._conn.discard()
            raise


class SqlStore(interface.Store):
    """The database: built from a URL, connects on first use."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = _normalise(make_url(url))
        self._echo = echo
        self._engine: Engine | None = None
        # SQLite has one writer. Threads of this process that want to write queue here,
        # and the next one starts the moment the last commits, instead of each polling
        # SQLite's lock from its busy handler (which sleeps up to 100 ms between tries, so
        # under load the lock sat free while 40 request threads slept). Other processes
        # on the same file still wait through the busy timeout.
        self._writer = threading.RLock()

    @classmethod
    def from_settings(cls, settings: HasDatabaseUrl) -> SqlStore:
        return cls(settings.database_url)

    @classmethod
    def from_env(cls) -> SqlStore:
        """``ESCALADE_DATABASE_URL``, read now (not at import)."""
        return cls(os.environ.get("ESCALADE_DATABASE_URL", DEFAULT_DATABASE_URL))

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.url.get_backend_name()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = _create_engine(self.url, echo=self._echo)
        return self._engine

    @contextmanager
    def unit_of_work(self, *, readonly: bool = False) -> Iterator[SqlUnitOfWork]:
        """A transaction; call ``uow.commit()`` to keep its work, otherwise it is rolled
        back when the block ends (also on error).

        ``readonly=True`` is for pages and reports: on SQLite it starts a deferred
        transaction (a WAL snapshot that never waits for the writer) instead of
        ``BEGIN IMMEDIATE``; a writing unit of work on SQLite first takes this process's
        writer lock (one writer at a time, handed straight to the next in line).
        """
        writer = (
            self._write_turn()
            if self.dialect == "sqlite" and not readonly
            else contextlib.nullcontext()
        )
        with writer, self.engine.connect() as connection:
            if readonly:
                connection = connection.execution_options(escalade_readonly=True)
            try:
                yield SqlUnitOfWork(connection)
            except sqlalchemy.exc.IntegrityError as exc:
                # the one integrity error both stores raise (a taken ref, a missing parent)
                raise IntegrityViolation(_first_line(exc)) from exc
            except sqlalchemy.exc.OperationalError as exc:
                if _transient(exc):
                    raise TransientConflict(_first_line(exc)) from exc
                raise

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """This process's turn to write on SQLite, waited for as long as SQLite's busy
        timeout (then the database is busy: the API answers 503, the engine backs off)."""
        seconds = sqlite_busy_timeout_ms() / 1000
        if not self._writer.acquire(timeout=seconds):
            raise StoreError(
                f"database is locked: no turn to write within {seconds:g} s "
                "(another writer of this process held it)"
            )
        try:
            yield
        finally:
            self._writer.release()

    def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations shipped in the package up to ``revision``."""
        from escalade.store.migrate import upgrade

        upgrade(self, revision)

    def current_revision(self) -> str | None:
        from escalade.store.migrate import current_revision

        return current_revision(self)

    def dispose(self) -> None:
        """Close pooled connections (e.g. before forking or at exit)."""
        if self._engine is not None:
            self._engine.dispose()

    def describe(self) -> str:
        """The URL without its password, for messages."""
        return self.url.render_as_string(hide_password=True)


# PostgreSQL SQLSTATEs of a transaction given up to keep concurrent ones consistent:
# serialization_failure, deadlock_detected, lock_not_available
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}


def _transient(exc: sqlalchemy.exc.OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES


def _first_line(exc: sqlalchemy.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]


def _normalise(url: URL) -> URL:
    backend = url.get_backend_name()
    if backend == "postgresql" and url.get_driver_name() != "psycopg":
        return url.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database '{backend}' in {url.render_as_string(hide_password=True)}: "
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    return url


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def _create_engine(url: URL, *, echo: bool) -> Engine:
    if url.get_backend_name() == "postgresql":
        return create_engine(
            url, echo=echo, json_serializer=_dumps, pool_pre_ping=True, pool_size=5
        )
    memory = _is_memory(url)
    busy_ms = sqlite_busy_timeout_ms()
    engine = create_engine(
        url,
        echo=echo,
        json_serializer=_dumps,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy (below) issue BEGIN instead of the sqlite3 module's own logic.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("escalade_readonly"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
