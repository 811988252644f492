"""The service layer: Escalade's use cases, each run in one unit of work.

``create``, ``act`` (acknowledge, escalate, resolve, …), ``receive_alert``,
``record_activity``, the timer handlers (SLA clocks, ladders, reminders, level clocks),
on-call hand-offs and related-issue incidents. Use cases act on the run-time world only
through an :class:`~escalade.service.effects.Effects` (timeline, outbox, row updates,
timers, pause state); the rules they apply are the pure ``escalation`` package. The API,
the CLI, the engine and ``simulate`` reach them through :class:`EscalationService`.
"""

from escalade.service.alerts import AlertIn
from escalade.service.errors import ActionRefused, NotFound
from escalade.service.escalations import EscalationService

__all__ = ["ActionRefused", "AlertIn", "EscalationService", "NotFound"]
