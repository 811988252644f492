"""SQLite's one writer, queued in the process (issue 20): a thread that wants to write waits
for its turn in Python and starts the moment the writer before it commits, instead of
polling SQLite's lock from the busy handler (which sleeps up to 100 ms between tries, so
under load the lock sat free while request threads slept). Reads never queue. A turn not
given within the busy timeout is "database is locked" (503 in the API)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from escalade.store.availability import database_outage
from escalade.store.db import SqlStore

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_store(tmp_path: Any) -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path / 'queue.db'}")
    store.upgrade()
    return store


def test_a_second_writer_begins_only_after_the_first_commits(sqlite_store: SqlStore) -> None:
    log: list[tuple[str, str]] = []

    def record(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        if sql.startswith("BEGIN"):
            log.append((threading.current_thread().name, sql))

    event.listen(sqlite_store.engine, "before_cursor_execute", record)
    first_in = threading.Event()

    def first() -> None:
        with sqlite_store.unit_of_work() as uow:
            uow.activity.record(actor="a", action="x", at=T0)
            first_in.set()
            time.sleep(0.3)
            log.append(("first", "COMMIT"))
            uow.commit()

    def second() -> None:
        first_in.wait(10)
        with sqlite_store.unit_of_work() as uow:
            uow.activity.record(actor="b", action="x", at=T0)
            uow.commit()

    def reader() -> None:
        first_in.wait(10)
        with sqlite_store.unit_of_work(readonly=True) as uow:
            uow.activity.total(action="x", since=T0, until=T0.replace(year=2027))
        log.append(("reader", "DONE"))

    threads = [threading.Thread(target=fn, name=fn.__name__) for fn in (first, second, reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    event.remove(sqlite_store.engine, "before_cursor_execute", record)
    order = [entry for entry in log if entry[0] in ("first", "second", "reader")]
    assert order.index(("first", "COMMIT")) < order.index(("second", "BEGIN IMMEDIATE")), order
    # a read does not wait for the writer
    assert order.index(("reader", "DONE")) < order.index(("first", "COMMIT")), order


def test_no_turn_within_the_busy_timeout_is_database_busy(
    sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESCALADE_SQLITE_BUSY_TIMEOUT_MS", "200")
    holding = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with sqlite_store.unit_of_work() as uow:
            holding.set()
            done.wait(10)
            uow.rollback()

    th = threading.Thread(target=hold)
    th.start()
    holding.wait(10)
    try:
        with pytest.raises(Exception) as caught, sqlite_store.unit_of_work():
            pass
        outage = database_outage(caught.value)
        assert outage is not None and outage.kind == "busy", caught.value
    finally:
        done.set()
        th.join(10)
