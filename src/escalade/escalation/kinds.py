"""The names the run time writes down: timer kinds, timeline event kinds and the system
actor. Pure. Each event kind is documented in ``docs/engine.md`` (a test keeps the two in
step); the values are what the store and ``simulate`` output carry, so they never change.
"""

from __future__ import annotations

from enum import StrEnum

SYSTEM = "escalade"
"""The actor of everything the engine does by itself (timers, triggers, deliveries)."""


class TimerKind(StrEnum):
    """What a durable timer does when it falls due (see ``service.timers``)."""

    sla_warning = "sla.warning"
    sla_breach = "sla.breach"
    ladder_step = "ladder.step"
    followup = "followup"
    update_due = "update.due"
    level_clock = "level.clock"
    oncall_handoff = "oncall.handoff"


class EventKind(StrEnum):
    """What a timeline entry records (``type`` in ``simulate`` output and the API)."""

    escalation_created = "escalation.created"
    escalation_acknowledged = "escalation.acknowledged"
    escalation_investigating = "escalation.investigating"
    escalation_escalated = "escalation.escalated"
    escalation_at_top = "escalation.at_top"
    escalation_deescalated = "escalation.deescalated"
    escalation_reassigned = "escalation.reassigned"
    escalation_recategorised = "escalation.recategorised"
    escalation_priority_raised = "escalation.priority_raised"
    escalation_waiting_on_customer = "escalation.waiting_on_customer"
    escalation_comment = "escalation.comment"
    escalation_resolved = "escalation.resolved"
    escalation_reopened = "escalation.reopened"
    escalation_closed = "escalation.closed"
    customer_replied = "customer.replied"
    sla_warning = "sla.warning"
    sla_breached = "sla.breached"
    sla_paused = "sla.paused"
    sla_resumed = "sla.resumed"
    trigger_fired = "trigger.fired"
    alert_repeated = "alert.repeated"
    notification_sent = "notification.sent"
    notification_held = "notification.held"
    notification_rerouted = "notification.rerouted"
    notification_failed = "notification.failed"
    notification_undeliverable = "notification.undeliverable"
    notification_raised = "notification.raised"
    notification_acknowledgement_told = "notification.acknowledgement_told"
    ladder_advanced = "ladder.advanced"
    ladder_exhausted = "ladder.exhausted"
    action_link_refused = "action_link.refused"
    authority_allowed = "authority.allowed"
    authority_refused = "authority.refused"
    reminder_due = "reminder.due"
    reminder_held = "reminder.held"
    postmortem_required = "postmortem.required"
    oncall_handoff = "oncall.handoff"


PERSON_ACTIONS = frozenset(
    {
        EventKind.escalation_created,
        EventKind.escalation_acknowledged,
        EventKind.escalation_investigating,
        EventKind.escalation_comment,
        EventKind.escalation_escalated,
        EventKind.escalation_deescalated,
        EventKind.escalation_reassigned,
        EventKind.escalation_recategorised,
        EventKind.escalation_reopened,
    }
)
"""Events that count as a person acting on an escalation (when not the system's)."""

RESPONSES = frozenset(
    {
        EventKind.escalation_comment,
        EventKind.escalation_acknowledged,
        EventKind.escalation_investigating,
    }
)
"""Events that count as a person responding (a response clock stops)."""
