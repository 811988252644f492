"""The write path holds to a fixed number of SQL statements (issue 20).

A create (routing, snapshot, timeline, outbox, timers, grouping) is a handful of
multi-row statements in one transaction, the same number with 0 and with 200 open
escalations; a repeat alert is one indexed lookup and one timeline row. Counted with
SQLAlchemy's ``before_cursor_execute`` event on SQLite and PostgreSQL: a change that adds a
query fails here, in particular one that grows with the number of open escalations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.policy.validate import load_policy
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.service.alerts import AlertIn
from escalade.store.db import SqlStore

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
POLICY = Path(__file__).parents[2] / "examples" / "policies" / "platform-operations.yaml"

# Statements of one create of the example platform policy (3 messages, 9 timers, 2
# related-issue triggers). SQLite counts its BEGIN IMMEDIATE; PostgreSQL its two advisory
# locks (one per related-issue trigger) and no BEGIN (the driver opens the transaction).
CREATE_BUDGET = {"sqlite": 12, "postgresql": 13}


@contextmanager
def statements(store: SqlStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _service(store: SqlStore) -> EscalationService:
    runtime = bootstrap(store=store, clock=VirtualClock(T0))
    runtime.service.apply_policy(load_policy(POLICY), by="tests")
    return runtime.service


def _create(service: EscalationService, i: int) -> None:
    service.create(
        EscalationInput(
            subject=f"Checkout fails for shop {i}",
            description="payments are refused at the last step",
            customer={"email": f"shop{i}@example.com"},
        )
    )


def _tables(seen: list[str], verb: str) -> list[str]:
    """The tables of every ``verb`` (also inside a ``WITH``: PostgreSQL queues one message
    and its delivery-log row in one statement)."""
    return [name for s in seen for name in re.findall(rf"{verb} (\w+)", s)]


def test_a_create_is_a_fixed_handful_of_statements(sql_store: SqlStore) -> None:
    service = _service(sql_store)
    _create(service, 0)
    with statements(sql_store) as first:
        _create(service, 1)
    for i in range(2, 202):
        _create(service, i)
    with sql_store.unit_of_work(readonly=True) as uow:
        assert uow.escalations.count_by_state()["open"] >= 200
    with statements(sql_store) as later:
        _create(service, 202)
    assert len(later) == len(first), "a create reads more with 200 open escalations"
    assert len(first) <= CREATE_BUDGET[sql_store.dialect], "\n".join(first)
    # each table written once: timeline, timers and outbox rows go as multi-row INSERTs
    inserts = _tables(first, "INSERT INTO")
    assert sorted(inserts) == sorted(set(inserts)), inserts
    assert {"timeline", "timers", "outbox", "deliveries"} <= set(inserts)


def test_a_repeat_alert_is_one_lookup_and_one_row(sql_store: SqlStore) -> None:
    service = _service(sql_store)
    alert = AlertIn(source="prometheus", key="disk-full:db1", status="firing", summary="Disk")
    first = service.receive_alert(alert)
    with statements(sql_store) as seen:
        again = service.receive_alert(alert)
    assert first is not None and again is not None and again.id == first.id
    work = [s for s in seen if not s.startswith(("BEGIN", "SELECT pg_advisory_xact_lock"))]
    assert len(work) == 2, "\n".join(seen)
    assert work[0].startswith("SELECT") and "alert_keys" in work[0]
    assert _tables(work, "INSERT INTO") == ["timeline"]


@pytest.mark.parametrize("messages", [1, 3])
def test_deferred_writes_are_seen_by_the_next_read(sql_store: SqlStore, messages: int) -> None:
    """What a use case holds back is written before anything else reads: a read in the same
    unit of work sees it, and a savepoint that fails takes it back."""
    from escalade.store import NewEntry

    class Batch:
        def __init__(self, uow: Any, escalation_id: int) -> None:
            self.uow, self.escalation_id, self.flushed, self.dropped = uow, escalation_id, 0, 0

        def flush(self) -> None:
            self.flushed += 1
            self.uow.timeline.append_many(
                [NewEntry(self.escalation_id, T0, "t", f"k{i}") for i in range(messages)]
            )

        def discard(self) -> None:
            self.dropped += 1

    with sql_store.unit_of_work() as uow:
        version = uow.policies.add(name="p", content="x", applied_by="t", at=T0)
        esc = uow.escalations.add(policy_version_id=version.id, snapshot={}, at=T0)
        kept = Batch(uow, esc.id)
        uow.defer(kept)
        assert kept.flushed == 0
        assert [e.kind for e in uow.timeline.for_escalation(esc.id)] == [
            f"k{i}" for i in range(messages)
        ]
        assert kept.flushed == 1
        dropped = Batch(uow, esc.id)
        with pytest.raises(RuntimeError), uow.savepoint():
            uow.defer(dropped)
            raise RuntimeError("undo the block")
        assert (dropped.flushed, dropped.dropped) == (0, 1)
        assert len(uow.timeline.for_escalation(esc.id)) == messages
        uow.commit()
