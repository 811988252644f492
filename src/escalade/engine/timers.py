"""Durable timers and the step that fires them.

A timer is a row: (kind, due time, idempotency key, payload). ``schedule`` adds one in the
caller's unit of work, so it is committed with the change that needs it, and scheduling
the same key twice is a no-op. The ``TimerStep`` claims due timers in a bounded batch
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``, then a lease so a crashed worker's claims come
back when the lease runs out) and fires their handlers.

Exactly once: each handler runs in the same transaction that inserts the timer's key into
``actions_done``; if the key is already there, the action was done and is skipped. A
batch is one transaction (one commit); if any handler in it raises, the batch is rolled
back and redone one timer at a time, each in a savepoint, so one bad timer does not hold
up the others and is retried with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from escalade.engine.config import EngineConfig
from escalade.store import Store, TimerRow, UnitOfWork
from escalade.store.availability import database_outage
from escalade.store.rows import evolve

log = logging.getLogger("escalade.engine.timers")

TimerHandler = Callable[[UnitOfWork, TimerRow, datetime], None]
"""``handler(uow, timer, now)``: act on a fired timer inside ``uow`` (do not commit).
``timer.late`` says it fired more than the tolerance after ``timer.due_at``. Follow-up
timers it schedules with ``schedule(uow, …)`` are committed with it."""


def schedule(
    uow: UnitOfWork,
    kind: str,
    due_at: datetime,
    key: str,
    payload: Mapping[str, Any] | None = None,
    escalation_id: int | None = None,
    *,
    created_at: datetime | None = None,
) -> bool:
    """Add a durable timer in ``uow``; ``False`` if ``key`` was scheduled before (ever)."""
    return uow.timers.schedule(
        kind, due_at, key, payload, escalation_id=escalation_id, created_at=created_at
    )


def backoff(attempts: int, config: EngineConfig) -> timedelta:
    """Wait before retry number ``attempts``: doubling from the base, capped."""
    return min(config.retry_base * (2 ** max(attempts - 1, 0)), config.retry_cap)


class TimerStep:
    """Fire due timers of the kinds it has handlers for."""

    def __init__(
        self,
        handlers: Mapping[str, TimerHandler],
        *,
        worker: str,
        config: EngineConfig | None = None,
        name: str = "timers",
    ) -> None:
        self.name = name
        self.handlers = dict(handlers)
        self.worker = worker
        self.config = config or EngineConfig()

    @property
    def kinds(self) -> list[str]:
        return sorted(self.handlers)

    def run(self, now: datetime, store: Store) -> int:
        """Claim one batch of due timers and fire it; returns how many were claimed."""
        if not self.handlers:
            return 0
        cfg = self.config
        with store.unit_of_work() as uow:
            claimed = uow.timers.claim(
                kinds=self.kinds,
                now=now,
                limit=cfg.batch_size,
                worker=self.worker,
                lease_until=now + cfg.lease,
            )
            uow.commit()
        if not claimed:
            return 0
        fired = [
            evolve(timer, late=now - timer.due_at > cfg.late_tolerance, fired_at=now)
            for timer in claimed
        ]
        try:
            with store.unit_of_work() as uow:
                self._fire_batch(uow, fired, now)
                uow.commit()
        except Exception:
            log.warning("a timer in a batch of %d failed; firing one by one", len(fired))
            with store.unit_of_work() as uow:
                self._fire_each(uow, fired, now)
                uow.commit()
        return len(claimed)

    def _fire_batch(self, uow: UnitOfWork, fired: Sequence[TimerRow], now: datetime) -> None:
        # Keys in a fixed order so two workers racing on an expired lease cannot deadlock.
        fresh = uow.actions.record_many(
            sorted(timer.key for timer in fired), worker=self.worker, at=now
        )
        for timer in fired:
            if timer.key in fresh:
                self.handlers[timer.kind](uow, timer, now)
        uow.timers.finish([(timer.id, timer.late) for timer in fired], now=now)

    def _fire_each(self, uow: UnitOfWork, fired: Sequence[TimerRow], now: datetime) -> None:
        for timer in fired:
            try:
                with uow.savepoint():
                    if uow.actions.record(timer.key, worker=self.worker, at=now):
                        self.handlers[timer.kind](uow, timer, now)
                    uow.timers.finish([(timer.id, timer.late)], now=now)
            except Exception as exc:
                if database_outage(exc) is not None:
                    # not the timer's fault: no attempt is spent (attempts run out and a
                    # timer is given up); the engine backs off and the lease brings it back
                    raise
                give_up = timer.attempts >= self.config.max_attempts
                log.exception(
                    "timer %s (%s) failed on attempt %d%s",
                    timer.key,
                    timer.kind,
                    timer.attempts,
                    "; giving up" if give_up else "",
                )
                uow.timers.fail(
                    timer.id,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_at=None if give_up else now + backoff(timer.attempts, self.config),
                )
