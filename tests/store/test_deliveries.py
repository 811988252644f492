"""The delivery log in all three stores: 'queued' is written with the message (once per
key), attempt events are appended in order, and a cancelled message is out of the queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from escalade.store import DeliveryEvent, NewDelivery, OutboxState, Store

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _enqueue(store: Store, key: str) -> bool:
    with store.unit_of_work() as uow:
        done = uow.outbox.enqueue(
            key=key, channel="webhook", recipient="ana", audience="internal", template=None,
            payload={}, at=T0,
        )  # fmt: skip
        uow.commit()
        return done


def test_the_delivery_log_of_a_message(store: Store) -> None:
    assert _enqueue(store, "k1") and not _enqueue(store, "k1") and _enqueue(store, "k2")
    with store.unit_of_work() as uow:
        [m1, m2] = uow.outbox.claim(now=T0, limit=10, worker="w", lease_until=T0 + timedelta(1))
        uow.deliveries.record_many([
            NewDelivery(m1, DeliveryEvent.failed, T0, "hook", error="503 busy"),
            NewDelivery(m1, DeliveryEvent.retrying, T0, "hook", retry_at=T0 + timedelta(seconds=5)),
        ])  # fmt: skip
        uow.outbox.cancel([m2.id])
        uow.commit()
    with store.unit_of_work() as uow:
        log = uow.deliveries.for_message("k1")
        assert [(d.event, d.attempt, d.instance, d.error) for d in log] == [
            (DeliveryEvent.queued, 0, None, None),
            (DeliveryEvent.failed, 1, "hook", "503 busy"),
            (DeliveryEvent.retrying, 1, "hook", None),
        ]
        assert log[2].retry_at == T0 + timedelta(seconds=5) and log[0].at == T0
        assert [d.event for d in uow.deliveries.for_message("k2")] == [DeliveryEvent.queued]
        assert uow.deliveries.for_message("nope") == []
        cancelled = uow.outbox.get("k2")
        assert cancelled is not None and cancelled.state is OutboxState.cancelled
    with store.unit_of_work() as uow:
        later = T0 + timedelta(days=2)
        claimed = uow.outbox.claim(now=later, limit=10, worker="w", lease_until=later)
        assert [m.key for m in claimed] == ["k1"]  # the cancelled one never comes back


def test_get_many_reads_the_escalations_of_a_batch(store: Store, policy_version_id: int) -> None:
    with store.unit_of_work() as uow:
        a = uow.escalations.add(policy_version_id=policy_version_id, snapshot={}, at=T0)
        b = uow.escalations.add(policy_version_id=policy_version_id, snapshot={}, at=T0)
        uow.commit()
    with store.unit_of_work() as uow:
        found = uow.escalations.get_many([b.id, a.id, b.id, 999])
    assert {k: v.ref for k, v in found.items()} == {a.id: a.ref, b.id: b.ref}
    with store.unit_of_work() as uow:
        assert uow.escalations.get_many([]) == {}
