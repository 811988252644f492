"""Outbox delivery: messages written in a unit of work are sent by this step.

Channels are small: one ``send(message)`` method. ``CapturingChannel`` is a real
in-memory channel that records what it was given (for ``simulate`` and tests). Real email
and chat channels plug in behind the same protocol.

Sending leaves the database, so it cannot share a transaction: a message is claimed with
a lease, sent, then marked sent. A crash between send and mark means it is sent again
after the lease; channels pass ``message.key`` on so receivers can drop the duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from escalade.engine.config import EngineConfig
from escalade.engine.timers import backoff
from escalade.errors import EscaladeError
from escalade.store import OutboxMessage, Store, UnitOfWork

log = logging.getLogger("escalade.engine.outbox")


@runtime_checkable
class Channel(Protocol):
    """Delivers one message or raises."""

    def send(self, message: OutboxMessage) -> None: ...


class CapturingChannel:
    """Records every message instead of sending it."""

    def __init__(self) -> None:
        self.messages: list[OutboxMessage] = []

    def send(self, message: OutboxMessage) -> None:
        self.messages.append(message)


SentHook = Callable[[UnitOfWork, OutboxMessage, datetime], None]
"""Called for each delivered message inside the unit of work that marks it sent (the
escalation service records ``notification.sent`` on the timeline here)."""


class NoChannel(EscaladeError, LookupError):
    pass


class OutboxStep:
    """Deliver due outbox messages through their channel."""

    name = "outbox"

    def __init__(
        self,
        channels: Channel | Mapping[str, Channel],
        *,
        worker: str,
        config: EngineConfig | None = None,
        on_sent: SentHook | None = None,
    ) -> None:
        self.channels = channels
        self.on_sent = on_sent
        self.worker = worker
        self.config = config or EngineConfig()

    def _channel(self, name: str) -> Channel:
        if isinstance(self.channels, Mapping):
            try:
                return self.channels[name]
            except KeyError:
                raise NoChannel(f"no channel configured for '{name}'") from None
        return self.channels

    def run(self, now: datetime, store: Store) -> int:
        cfg = self.config
        with store.unit_of_work() as uow:
            claimed = uow.outbox.claim(
                now=now, limit=cfg.batch_size, worker=self.worker, lease_until=now + cfg.lease
            )
            uow.commit()
        if not claimed:
            return 0
        sent: list[int] = []
        failed: list[tuple[OutboxMessage, str]] = []
        for message in claimed:
            try:
                self._channel(message.channel).send(message)
            except Exception as exc:
                log.warning("sending %s via %s failed: %s", message.key, message.channel, exc)
                failed.append((message, f"{type(exc).__name__}: {exc}"))
            else:
                sent.append(message.id)
        with store.unit_of_work() as uow:
            uow.outbox.mark_sent(sent, at=now)
            if self.on_sent is not None:
                # recorded in the same transaction that marks the message sent
                by_id = {m.id: m for m in claimed}
                for message_id in sent:
                    self.on_sent(uow, by_id[message_id], now)
            for message, error in failed:
                give_up = message.attempts >= cfg.max_attempts
                uow.outbox.fail(
                    message.id,
                    error=error,
                    retry_at=None if give_up else now + backoff(message.attempts, cfg),
                )
            uow.commit()
        return len(claimed)
