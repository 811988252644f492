"""The memory store and SQLite answer every sequence of timer and outbox operations alike.

Hypothesis draws sequences of what the engine does (schedule, cancel, claim, finish, fail,
ask the next due time, list; queue, claim, deliver and fail messages), each in its own
unit of work that is committed or rolled back, and runs them on both stores. Rows are
compared by idempotency key: SQLite reuses the ids of rolled-back rows and the memory
store (like PostgreSQL) does not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalade.store import Store, UnitOfWork
from escalade.store.db import SqlStore
from escalade.store.memory import MemoryStore
from soak import scaled

T0 = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
KINDS = ["sla", "ladder", "reminder"]
KEYS = [f"k{i}" for i in range(5)]
CHANNELS = ["email", "chat"]


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# five-minute steps, the lease length: claims meet lease ends and due times exactly
minutes = st.integers(min_value=0, max_value=6).map(lambda n: n * 5)
keys = st.sampled_from(KEYS)
kinds = st.one_of(
    st.just(KINDS), st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True)
)

schedules = st.tuples(st.just("schedule"), st.sampled_from(KINDS), minutes, keys)
claims = st.tuples(st.just("claim"), kinds, minutes, st.integers(1, 4), st.sampled_from("ab"))
enqueues = st.tuples(st.just("enqueue"), keys, st.sampled_from(CHANNELS), minutes)
takes = st.tuples(
    st.just("take"), minutes, st.integers(1, 4), st.one_of(st.none(), st.just(["chat"]))
)
operations = st.one_of(
    schedules,
    claims,
    claims,  # claims (and takes) weigh double: leases, expiries and reclaims are the point
    takes,
    takes,
    st.tuples(st.just("cancel"), keys),
    st.tuples(st.just("finish"), st.lists(keys, max_size=3), st.booleans(), minutes),
    st.tuples(st.just("fail"), keys, st.one_of(st.none(), minutes)),
    st.tuples(st.just("next_due"), st.one_of(st.none(), kinds)),
    st.tuples(st.just("find"), st.sampled_from(["pending", "done", "cancelled", "failed"])),
    enqueues,
    st.tuples(st.just("sent"), st.lists(keys, max_size=3), minutes),
    st.tuples(st.just("undeliverable"), keys, st.one_of(st.none(), minutes)),
    st.tuples(st.just("outbox_due")),
    st.tuples(st.just("messages"), st.one_of(st.none(), st.just(["pending"]))),
)
# mostly committed, so that claims and leases build up
commits = st.sampled_from([True, True, True, False])
# every example starts with timers and messages to work on
steps = st.tuples(
    st.lists(st.one_of(schedules, enqueues), min_size=2, max_size=8),
    st.lists(st.tuples(operations, commits), min_size=6, max_size=30),
).map(lambda both: [(op, True) for op in both[0]] + both[1])


def _timer(row: Any) -> tuple[Any, ...] | None:
    if row is None:
        return None
    return (row.key, row.kind, row.due_at, row.state, row.attempts, row.lease_until, row.late)


def _message(row: Any) -> tuple[Any, ...] | None:
    if row is None:
        return None
    return (row.key, row.channel, row.state, row.attempts, row.available_at, row.sent_at)


def _apply(uow: UnitOfWork, op: tuple[Any, ...]) -> Any:
    name = op[0]
    timers, outbox = uow.timers, uow.outbox

    def timer_ids(names: list[str]) -> list[int]:
        return [t.id for k in names if (t := timers.get(k)) is not None]

    def message_ids(names: list[str]) -> list[int]:
        return [m.id for k in names if (m := outbox.get(k)) is not None]

    if name == "schedule":
        _, kind, due, key = op
        return timers.schedule(kind, _at(due), key, {"due": _at(due), "n": [1, "x"]})
    if name == "cancel":
        return timers.cancel(op[1])
    if name == "claim":
        _, wanted, now, limit, worker = op
        got = timers.claim(
            kinds=wanted, now=_at(now), limit=limit, worker=worker, lease_until=_at(now + 5)
        )
        return [_timer(t) for t in got]
    if name == "finish":
        _, names, late, now = op
        timers.finish([(i, late) for i in timer_ids(names)], now=_at(now))
        return [_timer(timers.get(k)) for k in names]
    if name == "fail":
        _, key, retry = op
        found = timer_ids([key])
        if found:
            timers.fail(found[0], error="boom", retry_at=None if retry is None else _at(retry))
        return _timer(timers.get(key))
    if name == "next_due":
        return timers.next_due(op[1])
    if name == "find":
        return [_timer(t) for t in timers.find(states=[op[1]])]
    if name == "enqueue":
        _, key, channel, at = op
        return outbox.enqueue(
            key=key,
            channel=channel,
            recipient="ana@example.com",
            audience="internal",
            template=None,
            payload={"at": _at(at)},
            at=_at(at),
        )
    if name == "take":
        _, now, limit, channels = op
        got = outbox.claim(
            now=_at(now), limit=limit, worker="w", lease_until=_at(now + 5), channels=channels
        )
        return [_message(m) for m in got]
    if name == "sent":
        _, names, at = op
        outbox.mark_sent(message_ids(names), at=_at(at))
        return [_message(outbox.get(k)) for k in names]
    if name == "undeliverable":
        _, key, retry = op
        found = message_ids([key])
        if found:
            outbox.fail(found[0], error="down", retry_at=None if retry is None else _at(retry))
        return _message(outbox.get(key))
    if name == "outbox_due":
        return outbox.next_due()
    if name == "messages":
        return [_message(m) for m in outbox.find(states=op[1])]
    raise AssertionError(name)


@settings(
    max_examples=scaled(60),  # 600 in make soak
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_memory_and_sqlite_agree_on_every_sequence(
    steps: list[tuple[tuple[Any, ...], bool]],
) -> None:
    memory = MemoryStore()
    sqlite = SqlStore("sqlite://")  # in memory, one connection: a fresh database per example
    sqlite.upgrade()
    try:
        for op, commit in steps:
            results = []
            for store in (memory, sqlite):
                with store.unit_of_work() as uow:
                    results.append(_apply(uow, op))
                    if commit:
                        uow.commit()
            assert results[0] == results[1], f"{op} (commit={commit})"
        assert _everything(memory) == _everything(sqlite)
    finally:
        sqlite.dispose()


def _everything(store: Store) -> tuple[list[Any], list[Any]]:
    with store.unit_of_work() as uow:
        return (
            [_timer(t) for t in uow.timers.find(states=None)],
            [_message(m) for m in uow.outbox.find()],
        )
