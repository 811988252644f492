"""Grouping keys and key locks on SQLite, PostgreSQL and the memory store.

``groups`` finds an escalation's related ones by key and time (an index), never by reading
every open escalation; ``locks`` make concurrent units of work on the same key run one after
the other (PostgreSQL advisory locks; the other stores run one writer at a time)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from escalade.errors import IntegrityViolation
from escalade.store import Store

T0 = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)


def _escalation(store: Store, policy_version_id: int, at: datetime, keys: list[str]) -> int:
    with store.unit_of_work() as uow:
        row = uow.escalations.add(policy_version_id=policy_version_id, snapshot={}, at=at)
        uow.groups.add(row.id, keys, at=at)
        uow.commit()
    return row.id


def test_active_members_by_key_and_time(store: Store, policy_version_id: int) -> None:
    old = _escalation(store, policy_version_id, T0 - timedelta(hours=3), ["p:customer:ana"])
    a = _escalation(store, policy_version_id, T0, ["p:customer:ana", "p:category:billing"])
    b = _escalation(store, policy_version_id, T0 + timedelta(minutes=5), ["p:customer:ana"])
    other = _escalation(store, policy_version_id, T0, ["p:customer:bo"])
    since = T0 - timedelta(hours=1)
    with store.unit_of_work(readonly=True) as uow:
        assert [e.id for e in uow.groups.active_members("p:customer:ana", since=since)] == [a, b]
        assert [e.id for e in uow.groups.active_members("p:category:billing", since=since)] == [a]
        assert [e.id for e in uow.groups.active_members("p:customer:bo", since=since)] == [other]
        assert uow.groups.active_members("q:customer:ana", since=since) == []
        assert [
            e.id for e in uow.groups.active_members("p:customer:ana", since=T0 - timedelta(hours=4))
        ] == [old, a, b]


def test_finished_and_linked_escalations_are_not_members(
    store: Store, policy_version_id: int
) -> None:
    a = _escalation(store, policy_version_id, T0, ["k"])
    b = _escalation(store, policy_version_id, T0, ["k"])
    c = _escalation(store, policy_version_id, T0, ["k"])
    with store.unit_of_work() as uow:
        row = uow.escalations.get(a)
        assert row is not None
        uow.escalations.update(a, expected_version=row.version, at=T0, state="resolved")
        row = uow.escalations.get(b)
        assert row is not None
        uow.escalations.update(b, expected_version=row.version, at=T0, parent_id=c)
        uow.commit()
    with store.unit_of_work(readonly=True) as uow:
        assert [e.id for e in uow.groups.active_members("k", since=T0)] == [c]


def test_grouping_an_escalation_that_does_not_exist_is_refused(store: Store) -> None:
    with pytest.raises(IntegrityViolation), store.unit_of_work() as uow:
        uow.groups.add(999_999, ["k"], at=T0)


def test_rolled_back_grouping_is_gone(store: Store, policy_version_id: int) -> None:
    a = _escalation(store, policy_version_id, T0, [])
    with store.unit_of_work() as uow:
        uow.groups.add(a, ["k"], at=T0)  # not committed
    with store.unit_of_work(readonly=True) as uow:
        assert uow.groups.active_members("k", since=T0) == []


@pytest.mark.postgres
def test_a_key_lock_holds_until_the_unit_of_work_ends(pg_store: Store) -> None:
    sql_store = pg_store
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with sql_store.unit_of_work() as uow:
            uow.locks.acquire("alert:am:Disk")
            first_holds.set()
            time.sleep(0.5)
            order.append("first done")
            uow.commit()

    def second() -> None:
        first_holds.wait(5)
        with sql_store.unit_of_work() as uow:
            uow.locks.acquire("alert:am:Disk")
            order.append("second in")
            uow.commit()

    def unrelated() -> None:
        first_holds.wait(5)
        with sql_store.unit_of_work() as uow:
            uow.locks.acquire("alert:am:Other")
            order.append("unrelated in")
            uow.commit()

    threads = [threading.Thread(target=f) for f in (first, second, unrelated)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order.index("second in") > order.index("first done")
    assert order.index("unrelated in") < order.index("first done")
