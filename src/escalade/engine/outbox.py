"""Outbox delivery: messages written in a unit of work are sent by this step.

Channels are small: one ``send(message)`` method that raises with the provider's error.
``CapturingChannel`` is a real in-memory channel that records what it was given (for
``simulate`` and tests); the real ones (SMTP, Slack, Teams, webhooks, PagerDuty, Opsgenie,
SMS and voice, Apprise) live in ``escalade.channels``. A channel that also has
``route(message) -> (instance, channel)`` picks a configured instance per message (the
policy's ``channels:``) and raises ``NoChannel`` when none fits.

Sending leaves the database, so it cannot share a transaction: a message is claimed with
a lease, sent, then marked sent. A crash between send and mark means it is sent again
after the lease; channels pass ``message.key`` on as the provider's idempotency key
(PagerDuty ``dedup_key``, Opsgenie ``alias``, the webhook's ``Idempotency-Key``, the
email's ``Message-ID``) so the receiver drops the duplicate.

Every event is written to the delivery log (``uow.deliveries``): queued (by the store, at
enqueue), sent, failed with the provider's error, retrying (exponential backoff with
jitter), gave up, undeliverable (no channel configured, nobody on call) and cancelled (the
escalation was acknowledged or resolved before an internal message went out, so a page
queued before an acknowledgement never arrives after it).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from escalade.engine import metrics
from escalade.engine.config import EngineConfig
from escalade.engine.timers import backoff
from escalade.errors import EscaladeError
from escalade.store import (
    DeliveryEvent,
    EscalationRow,
    NewDelivery,
    OutboxMessage,
    Store,
    UnitOfWork,
)

log = logging.getLogger("escalade.engine.outbox")

# How ``notify.resolve`` marks a recipient that reaches nobody: never sent, never retried.
UNREACHABLE_VIA = frozenset({"nobody on call", "unstaffed", "unknown schedule"})


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

GaveUpHook = Callable[[UnitOfWork, OutboxMessage, str, datetime], None]
"""``on_gave_up(uow, message, reason, now)``: a message will never be delivered (every
attempt failed, no channel is configured for it, or its recipient reaches nobody). Called
in the unit of work that marks it failed; the escalation side raises it to the owner and
moves the ladder on (``escalade.service.delivery``)."""

Prepare = Callable[[OutboxMessage, EscalationRow | None, datetime], OutboxMessage]
"""Adds what a channel needs at send time to a claimed message (the escalation's team
and priority, signed action links); the stored message is not changed."""


class NoChannel(EscaladeError, LookupError):
    """No channel (instance) is configured for a message: it is undeliverable."""


class Undeliverable(EscaladeError):
    """A channel that knows a message can never go (no address for the recipient)."""


@dataclass(frozen=True)
class _Outcome:
    message: OutboxMessage
    instance: str
    error: str | None = None
    final: bool = False  # undeliverable: no retry


def jittered_backoff(message: OutboxMessage, config: EngineConfig) -> timedelta:
    """Exponential backoff with 'equal jitter': half the doubling delay, plus a random
    part up to the other half. Seeded by the message's key and attempt, so a run is
    reproducible (``simulate``) while messages that failed together spread out."""
    full = backoff(message.attempts, config)
    rng = random.Random(f"{message.key}:{message.attempts}")
    return full / 2 + full / 2 * rng.random()


def superseded(message: OutboxMessage, esc: EscalationRow | None) -> str | None:
    """Why an internal message queued before its escalation was acknowledged or resolved
    must not go out any more (None: it may). Customer messages and notices written after
    the acknowledgement (``payload.after_ack``) always go."""
    if esc is None or message.audience == "customer" or message.payload.get("after_ack"):
        return None
    created = message.created_at
    if created is None:
        return None
    if esc.resolved_at is not None and created < esc.resolved_at:
        return f"{esc.ref} was resolved before this message went out"
    if esc.acknowledged_at is not None and created < esc.acknowledged_at:
        by = f" by {esc.owner}" if esc.owner else ""
        return f"{esc.ref} was acknowledged{by} before this message went out"
    return None


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
        on_gave_up: GaveUpHook | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.channels = channels
        self.on_sent = on_sent
        self.on_gave_up = on_gave_up
        self.prepare = prepare
        self.worker = worker
        self.config = config or EngineConfig()

    def _channel(self, message: OutboxMessage) -> tuple[str, Channel]:
        """The instance name and channel that carry a message; ``NoChannel`` if none."""
        name = message.channel
        channel: object
        if isinstance(self.channels, Mapping):
            try:
                channel = self.channels[name]
            except KeyError:
                raise NoChannel(f"no channel configured for '{name}'") from None
        else:
            channel = self.channels
        route = getattr(channel, "route", None)
        if route is not None:
            instance, routed = route(message)
            return str(instance), routed
        assert isinstance(channel, Channel)
        return name, channel

    def run(self, now: datetime, store: Store) -> int:
        cfg = self.config
        with store.unit_of_work() as uow:
            claimed = uow.outbox.claim(
                now=now, limit=cfg.batch_size, worker=self.worker, lease_until=now + cfg.lease
            )
            escalations = self._escalations(uow, claimed)
            uow.commit()
        if not claimed:
            return 0
        cancelled: list[tuple[OutboxMessage, str]] = []
        outcomes: list[_Outcome] = []
        for message in claimed:
            esc = escalations.get(message.escalation_id or 0)
            why = superseded(message, esc)
            if why is not None:
                cancelled.append((message, why))
                continue
            outcomes.append(self._deliver(message, esc, now))
        with store.unit_of_work() as uow:
            self._record(uow, outcomes, cancelled, now)
            uow.commit()
        return len(claimed)

    def _escalations(
        self, uow: UnitOfWork, messages: Sequence[OutboxMessage]
    ) -> dict[int, EscalationRow]:
        """The escalations of a claimed batch, in one read."""
        return uow.escalations.get_many(
            m.escalation_id for m in messages if m.escalation_id is not None
        )

    def _deliver(
        self, message: OutboxMessage, esc: EscalationRow | None, now: datetime
    ) -> _Outcome:
        via = message.payload.get("via")
        if via in UNREACHABLE_VIA:
            return _Outcome(message, "-", f"{via}: {message.recipient}", final=True)
        try:
            if self.prepare is not None:
                message = self.prepare(message, esc, now)
            instance, channel = self._channel(message)
        except (NoChannel, Undeliverable) as exc:
            return _Outcome(message, "-", str(exc), final=True)
        except Exception as exc:  # a bug in preparing one message must not stop the rest
            log.exception("preparing %s failed", message.key)
            return _Outcome(message, "-", f"{type(exc).__name__}: {exc}")
        started = time.perf_counter()
        try:
            channel.send(message)
        except Undeliverable as exc:
            return _Outcome(message, instance, str(exc), final=True)
        except Exception as exc:
            log.warning("sending %s via %s failed: %s", message.key, instance, exc)
            return _Outcome(message, instance, f"{type(exc).__name__}: {exc}")
        metrics.SEND_SECONDS.labels(message.channel).observe(time.perf_counter() - started)
        return _Outcome(message, instance)

    def _record(
        self,
        uow: UnitOfWork,
        outcomes: Sequence[_Outcome],
        cancelled: Sequence[tuple[OutboxMessage, str]],
        now: datetime,
    ) -> None:
        cfg = self.config
        log_: list[NewDelivery] = []
        sent = [o for o in outcomes if o.error is None]
        uow.outbox.mark_sent([o.message.id for o in sent], at=now)
        for o in sent:
            log_.append(NewDelivery(o.message, DeliveryEvent.sent, now, o.instance))
            outcome = "first_try" if o.message.attempts <= 1 else "after_retries"
            metrics.NOTIFICATIONS.labels(o.message.channel, o.instance, outcome).inc()
            if self.on_sent is not None:
                # recorded in the same transaction that marks the message sent
                self.on_sent(uow, o.message, now)
        if cancelled:
            uow.outbox.cancel([m.id for m, _ in cancelled])
        for m, why in cancelled:
            log_.append(NewDelivery(m, DeliveryEvent.cancelled, now, error=why))
            metrics.NOTIFICATIONS.labels(m.channel, "-", "cancelled").inc()
        gave_up: list[tuple[OutboxMessage, str]] = []
        for o in outcomes:
            if o.error is None:
                continue
            m, error = o.message, o.error
            if o.final:
                uow.outbox.fail(m.id, error=error, retry_at=None)
                log_.append(NewDelivery(m, DeliveryEvent.undeliverable, now, error=error))
                metrics.NOTIFICATIONS.labels(m.channel, o.instance, "undeliverable").inc()
                gave_up.append((m, f"undeliverable: {error}"))
                continue
            metrics.FAILED_ATTEMPTS.labels(m.channel, o.instance).inc()
            log_.append(NewDelivery(m, DeliveryEvent.failed, now, o.instance, error=error))
            if m.attempts >= cfg.max_attempts:
                uow.outbox.fail(m.id, error=error, retry_at=None)
                log_.append(NewDelivery(m, DeliveryEvent.gave_up, now, o.instance, error=error))
                metrics.NOTIFICATIONS.labels(m.channel, o.instance, "gave_up").inc()
                gave_up.append((m, f"gave up after {m.attempts} attempt(s): {error}"))
            else:
                retry_at = now + jittered_backoff(m, cfg)
                uow.outbox.fail(m.id, error=error, retry_at=retry_at)
                log_.append(
                    NewDelivery(m, DeliveryEvent.retrying, now, o.instance, retry_at=retry_at)
                )
        uow.deliveries.record_many(log_)
        if self.on_gave_up is not None:
            for m, reason in gave_up:
                self.on_gave_up(uow, m, reason, now)
