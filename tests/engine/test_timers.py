"""The timer engine on real SQLite and PostgreSQL: idempotent scheduling, exactly-once
actions, follow-ups, retries, lease expiry after a crashed claim, and late marking."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from escalade.clock import SystemClock, VirtualClock
from escalade.engine import Engine, EngineConfig, TimerStep, schedule
from escalade.store import Store, TimerRow, TimerState, UnitOfWork

T0 = datetime(2026, 3, 7, 23, 50, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class Recorder:
    """A handler that records what fired in the database, in the handler's transaction
    (an in-memory list would keep the effects of a rolled-back batch)."""

    def __init__(self, store: Store, prefix: str = "fired") -> None:
        self.store = store
        self.prefix = prefix

    def __call__(self, uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        uow.outbox.enqueue(
            key=f"{self.prefix}/{timer.key}",
            channel="test",
            recipient=timer.key,
            audience="internal",
            template=None,
            payload={"late": timer.late, "fired_at": timer.fired_at},
            at=now,
        )

    @property
    def fired(self) -> list[dict[str, object]]:
        with self.store.unit_of_work() as uow:
            messages = uow.outbox.find()
        return [
            {"key": m.recipient, **m.payload}
            for m in messages
            if m.key.startswith(f"{self.prefix}/")
        ]

    @property
    def keys(self) -> list[str]:
        return [str(f["key"]) for f in self.fired]


def _schedule(store: Store, *timers: tuple[str, datetime]) -> None:
    with store.unit_of_work() as uow:
        for key, due in timers:
            schedule(uow, "step", due, key, {"key": key})
        uow.commit()


def _timer(store: Store, key: str) -> TimerRow:
    with store.unit_of_work() as uow:
        timer = uow.timers.get(key)
    assert timer is not None
    return timer


def test_scheduling_the_same_key_twice_is_a_no_op(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert schedule(uow, "step", T0, "E1/ladder/1", {"level": "L1"})
        assert not schedule(uow, "step", T0 + SECOND, "E1/ladder/1", {"level": "L2"})
        uow.commit()
    with store.unit_of_work() as uow:
        timers = uow.timers.find()
    assert [(t.key, t.due_at, t.payload) for t in timers] == [("E1/ladder/1", T0, {"level": "L1"})]


def test_fires_due_timers_in_due_order_and_not_before(store: Store) -> None:
    rec = Recorder(store)
    _schedule(store, ("b", T0 + 2 * SECOND), ("a", T0 + SECOND), ("c", T0 + 60 * SECOND))
    engine = Engine(store, VirtualClock(T0), {"step": rec})
    assert engine.run_once(T0) == 0
    assert engine.run_once(T0 + 2 * SECOND) == 2
    assert rec.keys == ["a", "b"]
    assert engine.run_once(T0 + 2 * SECOND) == 0
    assert engine.next_due() == T0 + 60 * SECOND
    done = _timer(store, "a")
    assert done.state is TimerState.done and done.fired_at == T0 + 2 * SECOND


def test_an_action_already_in_the_ledger_is_skipped(store: Store) -> None:
    rec = Recorder(store)
    _schedule(store, ("a", T0), ("b", T0))
    with store.unit_of_work() as uow:
        uow.actions.record("a", worker="earlier-run", at=T0)
        uow.commit()
    Engine(store, VirtualClock(T0), {"step": rec}).run_until_idle(T0)
    assert rec.keys == ["b"]
    assert _timer(store, "a").state is TimerState.done


def test_cancelled_timers_do_not_fire(store: Store) -> None:
    rec = Recorder(store)
    _schedule(store, ("a", T0), ("b", T0))
    with store.unit_of_work() as uow:
        assert uow.timers.cancel("a")
        assert not uow.timers.cancel("a")
        uow.commit()
    Engine(store, VirtualClock(T0), {"step": rec}).run_until_idle(T0)
    assert rec.keys == ["b"]


def test_follow_up_timers_commit_with_their_handler(store: Store) -> None:
    def ladder(uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        step = timer.payload["step"]
        uow.actions.record(f"page/{step}", worker="test", at=now)
        if step < 3:
            schedule(uow, "ladder", now, f"ladder/{step + 1}", {"step": step + 1})

    with store.unit_of_work() as uow:
        schedule(uow, "ladder", T0, "ladder/1", {"step": 1})
        uow.commit()
    engine = Engine(store, VirtualClock(T0), {"ladder": ladder})
    assert engine.run_until_idle(T0) == 3
    with store.unit_of_work() as uow:
        assert all(uow.actions.is_done(f"page/{n}") for n in (1, 2, 3))


def test_a_failing_handler_is_retried_alone_then_given_up(store: Store) -> None:
    rec = Recorder(store)

    def flaky(uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        if timer.key == "bad":
            schedule(uow, "step", now, "should-roll-back")
            raise RuntimeError("boom")
        rec(uow, timer, now)

    _schedule(store, ("a", T0), ("bad", T0), ("c", T0))
    config = EngineConfig(max_attempts=2, retry_base=10 * SECOND)
    engine = Engine(store, VirtualClock(T0), {"step": flaky}, config=config)
    assert engine.run_once(T0) == 3
    assert rec.keys == ["a", "c"]
    bad = _timer(store, "bad")
    assert bad.state is TimerState.pending and bad.attempts == 1
    assert bad.last_error == "RuntimeError: boom" and bad.lease_until == T0 + 10 * SECOND
    with store.unit_of_work() as uow:
        assert uow.timers.get("should-roll-back") is None
        assert not uow.actions.is_done("bad")
    assert engine.next_due() == T0 + 10 * SECOND
    assert engine.run_once(T0 + 9 * SECOND) == 0
    assert engine.run_once(T0 + 10 * SECOND) == 1
    assert _timer(store, "bad").state is TimerState.failed
    assert rec.keys == ["a", "c"]


def test_lease_expiry_recovers_a_crashed_claim(store: Store) -> None:
    config = EngineConfig(lease=30 * SECOND)
    _schedule(store, ("a", T0), ("b", T0))
    # A worker claims the timers and dies before firing them.
    with store.unit_of_work() as uow:
        claimed = uow.timers.claim(
            kinds=["step"], now=T0, limit=10, worker="crashed", lease_until=T0 + config.lease
        )
        uow.commit()
    assert [t.key for t in claimed] == ["a", "b"]
    rec = Recorder(store)
    engine = Engine(store, VirtualClock(T0), {"step": rec}, config=config, worker="survivor")
    assert engine.run_until_idle(T0 + 29 * SECOND) == 0
    assert engine.next_due() == T0 + 30 * SECOND
    assert engine.run_until_idle(T0 + 30 * SECOND) == 2
    assert rec.keys == ["a", "b"]
    assert _timer(store, "a").attempts == 2
    assert engine.run_until_idle(T0 + 90 * SECOND) == 0
    assert rec.keys == ["a", "b"]


def test_a_slow_worker_and_a_reclaiming_one_act_once(store: Store) -> None:
    """The lease ran out while the first worker was still busy; both fire; one acts."""
    _schedule(store, ("a", T0))
    slow_rec = Recorder(store, prefix="slow")
    slow = TimerStep({"step": slow_rec}, worker="slow")
    with store.unit_of_work() as uow:
        stale = uow.timers.claim(kinds=["step"], now=T0, limit=1, worker="slow", lease_until=T0)
        uow.commit()
    rec = Recorder(store)
    Engine(store, VirtualClock(T0), {"step": rec}).run_until_idle(T0 + SECOND)
    with store.unit_of_work() as uow:  # the slow worker finally gets there
        slow._fire_batch(uow, stale, T0 + 2 * SECOND)
        uow.commit()
    assert rec.keys == ["a"]
    assert slow_rec.keys == []


@pytest.mark.parametrize(("delay", "late"), [(0, False), (5, False), (6, True), (3600, True)])
def test_late_timers_are_marked_and_the_handler_is_told(
    store: Store, delay: int, late: bool
) -> None:
    rec = Recorder(store)
    _schedule(store, ("a", T0))
    engine = Engine(store, VirtualClock(T0), {"step": rec})
    engine.run_until_idle(T0 + delay * SECOND)
    assert [f["late"] for f in rec.fired] == [late]
    assert rec.fired[0]["fired_at"] == (T0 + delay * SECOND).isoformat()
    assert _timer(store, "a").late is late


def test_kinds_without_a_handler_wait(store: Store) -> None:
    with store.unit_of_work() as uow:
        schedule(uow, "someone-elses", T0, "x")
        uow.commit()
    engine = Engine(store, VirtualClock(T0), {"step": Recorder(store)})
    assert engine.run_until_idle(T0 + SECOND) == 0
    assert engine.next_due() is None
    assert _timer(store, "x").state is TimerState.pending


def test_batches_are_bounded(store: Store) -> None:
    rec = Recorder(store)
    _schedule(store, *((f"k{i:03}", T0) for i in range(25)))
    engine = Engine(store, VirtualClock(T0), {"step": rec}, config=EngineConfig(batch_size=10))
    assert [engine.run_once(T0) for _ in range(4)] == [10, 10, 5, 0]
    assert rec.keys == sorted(rec.keys) and len(set(rec.keys)) == 25


def test_run_forever_fires_and_stops(store: Store) -> None:
    fired = threading.Event()

    def handler(uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        fired.set()

    clock = SystemClock()
    with store.unit_of_work() as uow:
        schedule(uow, "step", clock.now() + timedelta(milliseconds=200), "soon")
        uow.commit()
    engine = Engine(store, clock, {"step": handler})
    stop = threading.Event()
    thread = threading.Thread(target=engine.run_forever, args=(stop, 5.0))
    thread.start()
    try:
        assert fired.wait(3), "the timer did not fire within 3 s although it was due in 0.2 s"
    finally:
        stop.set()
        thread.join(3)
    assert not thread.is_alive()
    assert _timer(store, "soon").state is TimerState.done
