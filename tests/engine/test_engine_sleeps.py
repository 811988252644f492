"""The engine sleeps (issue 20): after a request it runs a pass only if the request made
something due sooner than the engine's next wake; a request that schedules nothing new
wakes nothing; finding the next due time writes nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from escalade.clock import SystemClock
from escalade.engine import Engine
from escalade.engine.wakeup import note_due, take_due
from escalade.store import Store
from escalade.store.db import SqlStore


class CountingStep:
    name = "counting"

    def __init__(self) -> None:
        self.passes = 0

    def run(self, now: datetime, store: Store) -> int:
        self.passes += 1
        return 0


@pytest.fixture
def sleeping(sql_store: SqlStore) -> Iterator[tuple[Engine, CountingStep]]:
    step = CountingStep()
    engine = Engine(sql_store, SystemClock(), steps=[step])
    stop = threading.Event()
    thread = threading.Thread(
        target=engine.run_forever, args=(stop,), kwargs={"poll_interval": 30.0}
    )
    thread.start()
    deadline = time.monotonic() + 30
    while step.passes < 1 and time.monotonic() < deadline:  # its first pass …
        time.sleep(0.05)
    time.sleep(1.5)  # … then it looks the next due time up and sleeps (30 s)
    take_due()  # forget due times earlier tests noted in this thread (no engine took them)
    try:
        yield engine, step
    finally:
        stop.set()
        thread.join(timeout=10)


def _settle(step: CountingStep, seconds: float = 1.0) -> int:
    """Give a woken engine time to run, and return how many passes it has run."""
    time.sleep(seconds)
    return step.passes


def test_a_request_that_schedules_nothing_wakes_nothing(
    sleeping: tuple[Engine, CountingStep],
) -> None:
    engine, step = sleeping
    before = step.passes
    for _ in range(20):
        engine.wake()  # what the API calls after each request
    assert _settle(step) == before


def test_work_due_now_wakes_it_at_once(sleeping: tuple[Engine, CountingStep]) -> None:
    engine, step = sleeping
    before = step.passes
    note_due(datetime.now(UTC))
    engine.wake()
    deadline = time.monotonic() + 10
    while step.passes == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _settle(step, 0.5) == before + 1


def test_work_due_after_its_next_wake_does_not(sleeping: tuple[Engine, CountingStep]) -> None:
    engine, step = sleeping
    before = step.passes
    note_due(datetime.now(UTC) + timedelta(hours=1))  # later than the 30 s poll
    engine.wake()
    assert _settle(step) == before


def test_finding_the_next_due_time_writes_nothing(sql_store: SqlStore) -> None:
    engine = Engine(sql_store, SystemClock(), {"k": lambda *_: None}, channels=lambda _m: None)
    seen: list[str] = []

    def record(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(sql_store.engine, "before_cursor_execute", record)
    try:
        assert engine.next_due() is None
    finally:
        event.remove(sql_store.engine, "before_cursor_execute", record)
    work = [s for s in seen if s != "BEGIN"]  # SQLite: a deferred (read) transaction
    assert work and all(s.startswith("SELECT") for s in work), seen
