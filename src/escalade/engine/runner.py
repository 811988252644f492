"""The engine: an ordered list of steps, run in passes.

Each step owns one concern, claims its due rows in a bounded batch, acts and commits
(``run(now, store) -> int``, the number of rows it handled). The engine only runs the
list: ``serve`` runs it in a thread, ``worker`` runs it alone (several processes share
the work on PostgreSQL), and ``simulate`` and the tests call ``run_until_idle`` with a
virtual clock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from escalade.clock import Clock
from escalade.engine.config import EngineConfig
from escalade.engine.outbox import Channel, GaveUpHook, OutboxStep, Prepare, SentHook
from escalade.engine.timers import TimerHandler, TimerStep
from escalade.engine.wakeup import take_due
from escalade.store import Store
from escalade.store.availability import database_outage

log = logging.getLogger("escalade.engine")

SQLITE_PAUSE_SECONDS = 0.005
BACKOFF_START = 0.5  # seconds after the first failed pass; doubles per failure


@dataclass(frozen=True)
class EngineStatus:
    """What ``run_forever`` is doing: ``stopped``, ``running``, or failing (e.g.
    ``database unavailable``) since ``since`` (``time.monotonic``) for ``failures`` passes."""

    state: str
    failures: int = 0
    since: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.state == "running"


class Step(Protocol):
    """One concern of the engine (SLA clocks, ladders, triggers, outbox, …)."""

    name: str

    def run(self, now: datetime, store: Store) -> int: ...


def worker_id() -> str:
    """Who holds a claim: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Engine:
    """Runs its steps in order, pass after pass."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        handlers: Mapping[str, TimerHandler] | None = None,
        *,
        channels: Channel | Mapping[str, Channel] | None = None,
        on_sent: SentHook | None = None,
        on_gave_up: GaveUpHook | None = None,
        prepare: Prepare | None = None,
        steps: Sequence[Step] | None = None,
        config: EngineConfig | None = None,
        worker: str | None = None,
    ) -> None:
        """With ``steps`` omitted the list is: fire timers (``handlers``), then deliver the
        outbox (only when ``channels`` are given)."""
        self.store = store
        self.clock = clock
        self.config = config or EngineConfig()
        self.worker = worker or worker_id()
        self.handlers = dict(handlers or {})
        if steps is None:
            built: list[Step] = [TimerStep(self.handlers, worker=self.worker, config=self.config)]
            if channels is not None:
                built.append(
                    OutboxStep(
                        channels,
                        worker=self.worker,
                        config=self.config,
                        on_sent=on_sent,
                        on_gave_up=on_gave_up,
                        prepare=prepare,
                    )
                )
            steps = built
        self.steps: list[Step] = list(steps)
        self._wake = threading.Event()
        # when the sleeping engine will wake by itself; None while it runs a pass
        self._wake_at: datetime | None = None
        self.status = EngineStatus("stopped")

    def run_once(self, now: datetime | None = None) -> int:
        """One pass: each step once, in order. Returns how many rows were handled."""
        now = now or self.clock.now()
        return sum(step.run(now, self.store) for step in self.steps)

    def run_until_idle(self, now: datetime | None = None, max_passes: int = 10_000) -> int:
        """Pass after pass at ``now`` until nothing is due (follow-ups due by ``now`` run too)."""
        now = now or self.clock.now()
        total = 0
        for _ in range(max_passes):
            done = self.run_once(now)
            if not done:
                return total
            total += done
        raise RuntimeError(f"engine still busy after {max_passes} passes at {now.isoformat()}")

    def next_due(self) -> datetime | None:
        """When something next becomes due for these steps (timers and outbox)."""
        with self.store.unit_of_work(readonly=True) as uow:
            candidates = [uow.timers.next_due(sorted(self.handlers)) if self.handlers else None]
            if any(isinstance(step, OutboxStep) for step in self.steps):
                candidates.append(uow.outbox.next_due())
        due = [c for c in candidates if c is not None]
        return min(due) if due else None

    def wake(self) -> None:
        """Called after a unit of work committed (the API, the service): run a pass now if
        it made something due sooner than the engine's next wake (``wakeup.note_due`` in
        this thread); a request that scheduled nothing new leaves the engine asleep."""
        due = take_due()
        if due is None:
            return
        planned = self._wake_at
        if planned is None or due < planned:
            self._wake.set()

    def run_forever(
        self, stop: threading.Event, poll_interval: float = 1.0, *, max_backoff: float = 30.0
    ) -> None:
        """Run passes until ``stop`` is set. When idle, wait until the next due time, the
        poll interval or ``wake()``, whichever comes first.

        A failing pass is not fatal (claims left behind come back when their lease runs
        out): the engine backs off exponentially (``BACKOFF_START`` doubling up to
        ``max_backoff`` seconds) and logs one line when it starts failing (a traceback only
        for errors that are not the database being unavailable or busy) and one when it
        works again; ``status`` says which state it is in."""
        log.info("engine %s started: steps %s", self.worker, [s.name for s in self.steps])
        self.status = EngineStatus("running")
        try:
            while not stop.is_set():
                try:
                    wait = self._pass(stop, poll_interval)
                except Exception as exc:
                    wait = self._failed(exc, max_backoff)
                else:
                    self._recovered()
                if wait is not None:
                    self._wake_at = self.clock.now() + timedelta(seconds=wait)
                    try:
                        self._sleep(stop, wait)
                    finally:
                        self._wake_at = None
        finally:
            self.status = EngineStatus("stopped")
        log.info("engine %s stopped", self.worker)

    def _pass(self, stop: threading.Event, poll_interval: float) -> float | None:
        """One pass; how long to wait before the next (None: go on at once)."""
        if self.run_once(self.clock.now()):
            if self.store.dialect == "sqlite":
                # One writer at a time: leave a gap for the API's writes.
                stop.wait(SQLITE_PAUSE_SECONDS)
            return None
        wait = poll_interval
        due = self.next_due()
        if due is not None:
            wait = min(wait, max((due - self.clock.now()).total_seconds(), 0.0))
        return wait

    def _failed(self, exc: Exception, max_backoff: float) -> float:
        """Back off; say so once per state (not once per pass)."""
        outage = database_outage(exc)
        state = f"database {outage.kind}" if outage else f"failing ({type(exc).__name__})"
        previous = self.status
        failures = previous.failures + 1
        wait = min(BACKOFF_START * 2 ** min(failures - 1, 30), max_backoff)
        since = previous.since if previous.state == state else time.monotonic()
        self.status = EngineStatus(state, failures=failures, since=since)
        if previous.state == state:
            log.debug("engine %s: still %s; retrying in %.1fs", self.worker, state, wait)
        elif outage is not None:
            log.warning(
                "engine %s: %s (%s); backing off, retrying in %.1fs, up to every %.0fs",
                self.worker,
                state,
                outage.reason,
                wait,
                max_backoff,
            )
        else:
            log.exception(
                "engine %s: pass failed; backing off, retrying in %.1fs, up to every %.0fs",
                self.worker,
                wait,
                max_backoff,
            )
        return wait

    def _recovered(self) -> None:
        previous = self.status
        if previous.failures:
            log.warning(
                "engine %s: working again after %.1fs %s (%d failed passes)",
                self.worker,
                time.monotonic() - previous.since,
                previous.state,
                previous.failures,
            )
            self.status = EngineStatus("running")

    def _sleep(self, stop: threading.Event, seconds: float) -> None:
        remaining = seconds
        slice_ = 0.05
        while remaining > 0 and not stop.is_set():
            if self._wake.wait(min(slice_, remaining)):
                self._wake.clear()
                return
            remaining -= slice_
        self._wake.clear()  # woken at the planned time: a wake asked for meanwhile is served


__all__ = ["Engine", "EngineStatus", "Step", "worker_id"]
