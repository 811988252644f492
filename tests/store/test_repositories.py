"""Repositories on real SQLite and PostgreSQL, and the memory store that must match them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, StatementError

from escalade.errors import IntegrityViolation
from escalade.store import ConcurrentUpdate, Store
from escalade.store.interface import TimelineRepository
from escalade.store.memory import MemoryTimelineRepository
from escalade.store.repositories import SqlTimelineRepository
from escalade.store.types import NaiveDatetimeError

T0 = datetime(2026, 3, 7, 23, 50, tzinfo=UTC)


def _escalation(store: Store, policy_version_id: int, **kw: object) -> int:
    with store.unit_of_work() as uow:
        row = uow.escalations.add(
            policy_version_id=policy_version_id,
            snapshot={"decision": {"team": "platform"}, "ladder": ["15m", "30m"]},
            at=T0,
            **kw,  # type: ignore[arg-type]
        )
        uow.commit()
    return row.id


def test_times_come_back_aware_utc(store: Store, policy_version_id: int) -> None:
    eastern = datetime(2026, 3, 7, 18, 50, tzinfo=timezone(timedelta(hours=-5)))
    with store.unit_of_work() as uow:
        row = uow.escalations.add(policy_version_id=policy_version_id, snapshot={}, at=eastern)
        uow.commit()
    with store.unit_of_work() as uow:
        again = uow.escalations.get(row.id)
    assert again is not None
    assert again.created_at == T0
    assert again.created_at.tzinfo is not None and again.created_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(store: Store) -> None:
    with (
        store.unit_of_work() as uow,
        pytest.raises((StatementError, NaiveDatetimeError), match="no time zone"),
    ):
        uow.timers.schedule("t", datetime(2026, 1, 1), "naive")


def test_uncommitted_work_is_rolled_back(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.timers.schedule("t", T0, "k1")
    with store.unit_of_work() as uow:
        assert uow.timers.get("k1") is None


def test_policy_versions_are_kept_once_per_content(store: Store) -> None:
    with store.unit_of_work() as uow:
        first = uow.policies.add(name="ops", content="id: ops\n", applied_by="ana", at=T0)
        same = uow.policies.add(name="ops", content="id: ops\n", applied_by="bo", at=T0)
        other = uow.policies.add(name="ops", content="id: ops # v2\n", applied_by="bo", at=T0)
        uow.commit()
    assert same == first
    assert other.id != first.id
    with store.unit_of_work() as uow:
        assert uow.policies.latest("ops") == other
        assert [p.id for p in uow.policies.history()] == [first.id, other.id]


def test_escalation_refs_and_snapshot(store: Store, policy_version_id: int) -> None:
    eid = _escalation(store, policy_version_id, subject="Payments failing", priority="SEV-1")
    with store.unit_of_work() as uow:
        # A later policy version does not touch the escalation's snapshot.
        uow.policies.add(name="ops", content="changed", applied_by="ana", at=T0)
        row = uow.escalations.get(eid)
        uow.commit()
    assert row is not None
    assert row.ref == f"ESC-{eid}"
    assert row.snapshot == {"decision": {"team": "platform"}, "ladder": ["15m", "30m"]}
    assert row.state == "open" and row.version == 1


def test_optimistic_locking_refuses_a_stale_update(store: Store, policy_version_id: int) -> None:
    eid = _escalation(store, policy_version_id, ref="E1")
    later = T0 + timedelta(minutes=12)
    with store.unit_of_work() as uow:
        row = uow.escalations.update(
            eid, expected_version=1, at=later, state="acknowledged", acknowledged_at=later
        )
        uow.commit()
    assert (row.version, row.state, row.acknowledged_at, row.updated_at) == (
        2,
        "acknowledged",
        later,
        later,
    )
    with store.unit_of_work() as uow, pytest.raises(ConcurrentUpdate):
        uow.escalations.update(eid, expected_version=1, at=later, state="resolved")
    with store.unit_of_work() as uow, pytest.raises(ValueError, match="version"):
        uow.escalations.update(eid, expected_version=2, at=later, version=7)


def test_find_and_count_escalations(store: Store, policy_version_id: int) -> None:
    a = _escalation(store, policy_version_id, team="billing")
    b = _escalation(store, policy_version_id, team="platform", parent_id=a)
    with store.unit_of_work() as uow:
        assert [r.id for r in uow.escalations.find(team="platform")] == [b]
        assert [r.id for r in uow.escalations.find(parent_id=a)] == [b]
        assert [r.id for r in uow.escalations.find(states=["open"])] == [b, a]
        assert uow.escalations.count_by_state() == {"open": 2}
        assert uow.escalations.get_by_ref("nope") is None


def test_timeline_is_append_only(store: Store, policy_version_id: int) -> None:
    for cls in (TimelineRepository, SqlTimelineRepository, MemoryTimelineRepository):
        assert not [m for m in dir(cls) if m.startswith(("update", "delete", "remove"))]
    eid = _escalation(store, policy_version_id)
    if store.dialect == "memory":
        with store.unit_of_work() as uow:
            uow.timeline.append(eid, at=T0, actor="engine", kind="created")
            uow.commit()
        with store.unit_of_work() as uow:
            (entry,) = uow.timeline.for_escalation(eid)
        with pytest.raises(AttributeError):
            entry.actor = "mallory"  # type: ignore[misc]
        return
    with store.unit_of_work() as uow:
        first = uow.timeline.append(eid, at=T0, actor="engine", kind="created", data={"n": 1})
        uow.timeline.append(eid, at=T0, actor="lena", kind="acknowledged", reason="on it")
        uow.commit()
    for sql in ("UPDATE timeline SET actor = 'mallory'", "DELETE FROM timeline"):
        with store.unit_of_work() as uow, pytest.raises((IntegrityViolation, DBAPIError)) as err:
            uow.connection.execute(text(sql))
        assert "append-only" in str(err.value)
    with store.unit_of_work() as uow:
        entries = uow.timeline.for_escalation(eid)
        assert [(e.actor, e.kind) for e in entries] == [
            ("engine", "created"),
            ("lena", "acknowledged"),
        ]
        assert entries[0].data == {"n": 1} and entries[1].reason == "on it"
        assert [e.kind for e in uow.timeline.after(first.id)] == ["acknowledged"]


def test_activity_counts_for_thresholds(store: Store) -> None:
    day = timedelta(days=1)
    with store.unit_of_work() as uow:
        for i in range(3):
            uow.activity.record(actor="u1", action="household.created", at=T0 + i * day, count=4)
        uow.activity.record(actor="u2", action="household.created", at=T0, count=11)
        uow.activity.record(actor="u1", action="member.removed", at=T0)
        uow.commit()
    with store.unit_of_work() as uow:
        total = uow.activity.total(action="household.created", since=T0, until=T0 + day)
        assert total == 15
        assert (
            uow.activity.total(action="household.created", actor="u1", since=T0, until=T0 + 3 * day)
            == 12
        )
        assert uow.activity.by_actor(
            action="household.created", since=T0, until=T0 + 3 * day, more_than=10
        ) == {"u1": 12, "u2": 11}
        # 23:50 UTC is 18:50 in New York: the same local days, shifted.
        days = uow.activity.by_day(
            actor="u1",
            action="household.created",
            since=T0,
            until=T0 + 3 * day,
            tz=ZoneInfo("America/New_York"),
        )
        assert days == {date(2026, 3, 7): 4, date(2026, 3, 8): 4, date(2026, 3, 9): 4}
        with pytest.raises(ValueError, match="at least 1"):
            uow.activity.record(actor="u1", action="x", at=T0, count=0)


def test_alert_keys_deduplicate(store: Store, policy_version_id: int) -> None:
    eid = _escalation(store, policy_version_id)
    with store.unit_of_work() as uow:
        assert uow.alert_keys.bind("HighErrorRate/checkout", eid, at=T0)
        assert not uow.alert_keys.bind("HighErrorRate/checkout", eid, at=T0)
        assert uow.alert_keys.get("HighErrorRate/checkout") == eid
        assert uow.alert_keys.release("HighErrorRate/checkout")
        assert uow.alert_keys.get("HighErrorRate/checkout") is None
        uow.commit()


def test_action_ledger_records_each_key_once(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.actions.record("a", worker="w1", at=T0)
        assert not uow.actions.record("a", worker="w2", at=T0)
        assert uow.actions.record_many(["a", "b", "c"], worker="w1", at=T0) == {"b", "c"}
        assert uow.actions.is_done("c") and not uow.actions.is_done("d")
        uow.commit()


def test_json_payloads_keep_times_as_text(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.timers.schedule("t", T0, "k", {"due": T0, "after": timedelta(minutes=15)})
        timer = uow.timers.get("k")
    assert timer is not None
    assert timer.payload == {"due": "2026-03-07T23:50:00+00:00", "after": 900.0}


def test_outbox_enqueue_is_idempotent(store: Store) -> None:
    with store.unit_of_work() as uow:
        kw = dict(channel="email", recipient="ana@example.com", audience="customer")
        assert uow.outbox.enqueue(key="m1", template="ack", payload={}, at=T0, **kw)  # type: ignore[arg-type]
        assert not uow.outbox.enqueue(key="m1", template="ack", payload={}, at=T0, **kw)  # type: ignore[arg-type]
        uow.commit()
    with store.unit_of_work() as uow:
        assert [m.key for m in uow.outbox.find()] == ["m1"]
        assert uow.outbox.next_due() == T0


def test_a_reader_does_not_wait_for_a_writer(sql_store: Store) -> None:
    store = sql_store  # the memory store runs one unit of work at a time
    with store.unit_of_work() as writer:
        writer.timers.schedule("t", T0, "held")  # the writer holds its transaction open
        with store.unit_of_work(readonly=True) as reader:
            assert reader.timers.get("held") is None
        writer.commit()
    with store.unit_of_work(readonly=True) as reader:
        assert reader.timers.get("held") is not None


def test_a_taken_ref_and_a_missing_parent_are_refused(store: Store, policy_version_id: int) -> None:
    _escalation(store, policy_version_id, ref="E1")
    with pytest.raises(IntegrityViolation):
        _escalation(store, policy_version_id, ref="E1")
    with pytest.raises(IntegrityViolation):
        _escalation(store, policy_version_id, parent_id=999_999)
    with store.unit_of_work() as uow:
        assert [e.ref for e in uow.escalations.find()] == ["E1"]


def test_a_claim_is_held_until_its_lease_ends_and_no_longer(store: Store) -> None:
    lease_end = T0 + timedelta(seconds=30)
    with store.unit_of_work() as uow:
        uow.timers.schedule("t", T0, "held")
        uow.timers.schedule("t", T0 + timedelta(seconds=10), "later")
        kw = dict(channel="email", recipient="ana@example.com", audience="internal")
        uow.outbox.enqueue(key="m", template=None, payload={}, at=T0, **kw)  # type: ignore[arg-type]
        first = uow.timers.claim(kinds=["t"], now=T0, limit=1, worker="a", lease_until=lease_end)
        taken = uow.outbox.claim(now=T0, limit=5, worker="a", lease_until=lease_end)
        uow.commit()
    assert [t.key for t in first] == ["held"] and [m.key for m in taken] == ["m"]
    with store.unit_of_work() as uow:
        # a second before the lease ends: only the timer nobody holds
        almost = lease_end - timedelta(seconds=1)
        got = uow.timers.claim(kinds=["t"], now=almost, limit=5, worker="b", lease_until=almost)
        assert [t.key for t in got] == ["later"]
        assert uow.outbox.claim(now=almost, limit=5, worker="b", lease_until=almost) == []
        uow.rollback()
    with store.unit_of_work() as uow:
        # the lease ends: claimable again, in due order, attempts counted
        assert uow.timers.next_due(["t"]) == T0 + timedelta(seconds=10)
        assert uow.outbox.next_due() == lease_end
        got = uow.timers.claim(kinds=["t"], now=lease_end, limit=5, worker="b", lease_until=T0)
        assert [(t.key, t.attempts) for t in got] == [("held", 2), ("later", 1)]
        again = uow.outbox.claim(now=lease_end, limit=5, worker="b", lease_until=lease_end)
        assert [(m.key, m.attempts) for m in again] == [("m", 2)]


def test_a_timer_left_out_of_a_full_claim_stays_claimable(store: Store) -> None:
    lease_end = T0 + timedelta(seconds=30)
    with store.unit_of_work() as uow:
        uow.timers.schedule("t", T0, "first")
        uow.timers.claim(kinds=["t"], now=T0, limit=1, worker="a", lease_until=lease_end)
        uow.timers.schedule("t", T0 + timedelta(seconds=1), "second")
        uow.commit()
    with store.unit_of_work() as uow:  # the expired claim comes first; the limit is one
        held = T0 + timedelta(hours=1)
        got = uow.timers.claim(kinds=["t"], now=lease_end, limit=1, worker="b", lease_until=held)
        assert [t.key for t in got] == ["first"]
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.timers.next_due(["t"]) == T0 + timedelta(seconds=1)
        got = uow.timers.claim(kinds=["t"], now=lease_end, limit=5, worker="b", lease_until=T0)
        assert [t.key for t in got] == ["second"]
