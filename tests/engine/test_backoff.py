"""The engine when the database goes away: it backs off exponentially instead of retrying
every poll, logs one line when it starts failing and one when it works again (no
traceback per pass), reports its state for /readyz, and picks up the due work after."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from escalade.clock import SystemClock, VirtualClock
from escalade.engine import Engine, EngineConfig, schedule
from escalade.engine.runner import BACKOFF_START
from escalade.store import TimerRow, UnitOfWork
from escalade.store.memory import MemoryStore


class SwitchableStore:
    """The memory store behind a switch: while ``down``, every unit of work fails the way
    SQLAlchemy fails when PostgreSQL refuses connections."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.down = False
        self.attempts_while_down = 0

    @property
    def dialect(self) -> str:
        return self.inner.dialect

    def unit_of_work(self, **kwargs: Any) -> AbstractContextManager[UnitOfWork]:
        if self.down:
            self.attempts_while_down += 1
            raise OperationalError(
                "SELECT 1", {}, ConnectionRefusedError("connection refused (port 5432)")
            )
        return self.inner.unit_of_work(**kwargs)


@pytest.fixture
def running() -> Iterator[tuple[Engine, SwitchableStore, list[str]]]:
    store = SwitchableStore()
    fired: list[str] = []

    def handler(uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        fired.append(timer.key)

    engine = Engine(store, SystemClock(), {"t": handler}, worker="w")  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(
        target=engine.run_forever, args=(stop,), kwargs={"poll_interval": 0.01}
    )
    thread.start()
    try:
        yield engine, store, fired
    finally:
        stop.set()
        thread.join(10)


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_engine_backs_off_and_logs_state_changes_once(
    running: tuple[Engine, SwitchableStore, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    engine, store, fired = running
    caplog.set_level(logging.DEBUG, logger="escalade.engine")
    _wait(lambda: engine.status.state == "running")

    store.down = True
    time.sleep(2.0)
    # polling every 10 ms this would be ~200 attempts; backing off from 0.5 s doubling it
    # is 0 s, 0.5 s, 1.5 s (and maybe 3.5 s is not yet due)
    assert 2 <= store.attempts_while_down <= 4, store.attempts_while_down
    assert engine.status.state == "database unavailable"
    assert not engine.status.healthy
    assert engine.status.failures == store.attempts_while_down

    with store.inner.unit_of_work() as uow:  # work that came due while it was down
        schedule(uow, kind="t", due_at=datetime.now(UTC), key="after-outage", payload={})
        uow.commit()
    store.down = False
    _wait(lambda: fired == ["after-outage"], timeout=BACKOFF_START * 2**4 + 5)
    assert engine.status.state == "running"

    lines = [r for r in caplog.records if r.levelno >= logging.INFO and "engine w:" in r.message]
    assert [r.levelname for r in lines] == ["WARNING", "WARNING"], [r.message for r in lines]
    down, up = (r.message for r in lines)
    assert "database unavailable (connection refused (port 5432)); backing off" in down
    assert "working again after" in up and "database unavailable" in up
    assert all(r.exc_info is None for r in caplog.records), "no traceback for an outage"


def test_an_unexpected_error_logs_its_traceback_once(
    running: tuple[Engine, SwitchableStore, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    engine, store, _ = running
    _wait(lambda: engine.status.state == "running")
    broken = store.inner

    def explode(**kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    store.inner = type("Broken", (), {"dialect": "memory", "unit_of_work": staticmethod(explode)})()
    time.sleep(1.2)
    store.inner = broken
    _wait(lambda: engine.status.state == "running")
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1 and "pass failed; backing off" in tracebacks[0].message


def test_a_database_outage_spends_no_attempt_of_a_timer() -> None:
    """A timer whose handler meets a database outage is not failed (with few attempts left
    it would be given up, its action lost): the pass fails, and the timer fires later."""
    store = MemoryStore()
    clock = VirtualClock(datetime(2026, 3, 8, 12, tzinfo=UTC))
    outages = 3
    fired: list[str] = []

    def handler(uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        nonlocal outages
        if outages:
            outages -= 1
            raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))
        fired.append(timer.key)

    config = EngineConfig(max_attempts=1, lease=timedelta(seconds=1))
    engine = Engine(store, clock, {"t": handler}, config=config, worker="w")
    with store.unit_of_work() as uow:
        schedule(uow, kind="t", due_at=clock.now(), key="page-ana", payload={})
        uow.commit()
    for _ in range(10):
        with contextlib.suppress(OperationalError):
            engine.run_until_idle()
        clock.advance(timedelta(seconds=2))  # the failed pass's claim runs out
    assert fired == ["page-ana"]
    with store.unit_of_work() as uow:
        timer = uow.timers.get("page-ana")
    assert timer is not None and timer.state.value == "done"
