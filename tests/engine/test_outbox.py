"""Outbox delivery through channels: captured, retried, given up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from escalade.clock import VirtualClock
from escalade.engine import CapturingChannel, Engine, EngineConfig
from escalade.store import OutboxMessage, OutboxState, Store

T0 = datetime(2026, 3, 7, 23, 50, tzinfo=UTC)


def _enqueue(store: Store, key: str, channel: str = "email") -> None:
    with store.unit_of_work() as uow:
        uow.outbox.enqueue(
            key=key,
            channel=channel,
            recipient="lena",
            audience="internal",
            template="page",
            payload={"ref": "E1"},
            at=T0,
        )
        uow.commit()


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    def send(self, message: OutboxMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("SMTP server said 421")
        self.sent.append(message.key)


def test_messages_are_delivered_once_through_their_channel(store: Store) -> None:
    captured = CapturingChannel()
    _enqueue(store, "E1/page/1")
    _enqueue(store, "E1/page/1")
    _enqueue(store, "E1/page/2")
    engine = Engine(store, VirtualClock(T0), {}, channels=captured)
    assert engine.run_until_idle(T0) == 2
    assert [(m.key, m.channel, m.recipient, m.payload) for m in captured.messages] == [
        ("E1/page/1", "email", "lena", {"ref": "E1"}),
        ("E1/page/2", "email", "lena", {"ref": "E1"}),
    ]
    with store.unit_of_work() as uow:
        sent = uow.outbox.find()
    assert [(m.state, m.sent_at) for m in sent] == [(OutboxState.sent, T0)] * 2


def test_failed_sends_are_retried_with_backoff_then_given_up(store: Store) -> None:
    flaky = Flaky(failures=1)
    _enqueue(store, "m1")
    config = EngineConfig(retry_base=timedelta(seconds=5), max_attempts=3)
    engine = Engine(store, VirtualClock(T0), {}, channels={"email": flaky}, config=config)
    assert engine.run_once(T0) == 1 and flaky.sent == []
    due = engine.next_due()
    # backoff with jitter: between half and all of the 5 s base delay
    assert due is not None and T0 + timedelta(seconds=2.5) <= due <= T0 + timedelta(seconds=5)
    assert engine.run_once(due - timedelta(milliseconds=1)) == 0
    assert engine.run_once(due) == 1
    assert flaky.sent == ["m1"]

    _enqueue(store, "to-nowhere", channel="carrier-pigeon")
    now = due
    for _ in range(10):
        engine.run_until_idle(now)
        due = engine.next_due()
        if due is None:
            break
        now = due
    with store.unit_of_work() as uow:
        lost = uow.outbox.get("to-nowhere")
    # no channel for it: undeliverable at once, never retried
    assert lost is not None and lost.state is OutboxState.failed and lost.attempts == 1
    assert lost.last_error == "no channel configured for 'carrier-pigeon'"
