"""Connecting the escalation service to the engine: which timer kinds it handles, and the
timeline record of each message the outbox delivers."""

from __future__ import annotations

import logging

from escalade.engine.outbox import CapturingChannel
from escalade.engine.timers import TimerHandler
from escalade.escalation.service import EscalationService
from escalade.store.rows import OutboxMessage

log = logging.getLogger("escalade.notify")

TIMER_KINDS = ("sla.warning", "sla.breach", "ladder.step", "followup", "update.due")


class RecordingChannel(CapturingChannel):
    """Captures every message (simulate, tests, and the default until real channels exist)
    and records ``notification.sent`` on the escalation's timeline."""

    def __init__(self, service: EscalationService) -> None:
        super().__init__()
        self.service = service

    def send(self, message: OutboxMessage) -> None:
        super().send(message)
        at = self.service.clock.now()
        extra = {
            k: v
            for k, v in message.payload.items()
            if k in ("via", "mention", "step", "ladder", "note", "late") and v is not None
        }
        with self.service.store.unit_of_work() as uow:
            self.service.record_sent(
                uow,
                message.escalation_id,
                channel=message.channel,
                to=message.recipient,
                audience=message.audience,
                template=message.template,
                at=at,
                extra=extra,
            )
            uow.commit()


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
