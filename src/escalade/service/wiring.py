"""Connecting the escalation service to the engine: which timer kinds it handles, and the
timeline record of each message the outbox delivers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from escalade.engine.config import EngineConfig
from escalade.engine.outbox import CapturingChannel, Channel, Prepare, SentHook
from escalade.engine.runner import Engine
from escalade.engine.timers import TimerHandler
from escalade.escalation.kinds import TimerKind
from escalade.service.delivery import gave_up_hook
from escalade.service.escalations import EscalationService
from escalade.store import UnitOfWork
from escalade.store.rows import OutboxMessage

log = logging.getLogger("escalade.notify")

TIMER_KINDS = tuple(kind.value for kind in TimerKind)
"""Every timer kind the escalation service handles (the engine claims only these)."""


class RecordingChannel(CapturingChannel):
    """Captures every message instead of sending it (simulate and tests; and, until real
    channels exist, serve and worker through ``LoggingChannel``)."""


_SENT_KEYS = ("via", "mention", "step", "ladder", "note", "late", "cause", "why")


def sent_hook(service: EscalationService) -> SentHook:
    """Records ``notification.sent`` on the escalation's timeline in the same transaction
    that marks the message delivered, so a crash never records it twice or not at all."""

    def record(uow: UnitOfWork, message: OutboxMessage, at: datetime) -> None:
        extra = {k: v for k, v in message.payload.items() if k in _SENT_KEYS and v is not None}
        if message.payload.get("body") or message.payload.get("subject"):
            # the words that went out (``simulate`` shows them when a scenario asks)
            extra["message"] = {
                "subject": message.payload.get("subject") or "",
                "body": message.payload.get("body") or "",
                "template": message.payload.get("rendered_from") or message.template,
            }
        service.record_sent(
            uow,
            message.escalation_id,
            channel=message.channel,
            to=message.recipient,
            audience=message.audience,
            template=message.template,
            at=at,
            extra=extra,
        )

    return record


def escalation_engine(
    service: EscalationService,
    channels: Channel | Mapping[str, Channel],
    config: EngineConfig | None = None,
    worker: str | None = None,
    prepare: Prepare | None = None,
) -> Engine:
    """The engine of ``serve``, ``worker``, ``simulate`` and the tests: escalation timers,
    then outbox delivery with its timeline record; a message that cannot be delivered is
    raised to the owner and moves the ladder on (``service.delivery``)."""
    return Engine(
        service.store,
        service.clock,
        escalation_handlers(service),
        channels=channels,
        on_sent=sent_hook(service),
        on_gave_up=gave_up_hook(service.book.pinned, service.overrides_in_force),
        prepare=prepare if prepare is not None else getattr(channels, "prepare", None),
        config=config,
        worker=worker,
    )


class LoggingChannel(RecordingChannel):
    """The channel ``serve`` and ``worker`` use until real channels (email, chat, PagerDuty)
    land: each message is logged and recorded on the timeline, and kept in memory."""

    def send(self, message: OutboxMessage) -> None:
        log.info(
            "notification %s via %s to %s (%s): %s",
            message.key,
            message.channel,
            message.recipient,
            message.audience,
            message.payload.get("subject") or message.template or "",
        )
        super().send(message)
        # keep memory bounded in a long-running process
        if len(self.messages) > 1000:
            del self.messages[:500]


def escalation_handlers(service: EscalationService) -> dict[str, TimerHandler]:
    """The timer handlers of the escalation engine (SLA clocks, ladders, reminders)."""
    return {kind: service.handle_timer for kind in TIMER_KINDS}
