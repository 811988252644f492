"""The ``receive_alert`` use case: a monitoring alert (Alertmanager, Prometheus, PagerDuty
Events v2, a mapped webhook, the API) creates, acknowledges, updates or resolves the one
escalation of its deduplication key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from escalade.clock import Clock
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.lifecycle import Action, State, is_done
from escalade.escalation.triggers import alert_priority, alert_trigger
from escalade.policy.models import Channel
from escalade.routing.models import Customer, EscalationInput
from escalade.service.act import Act
from escalade.service.create import Create
from escalade.service.effects import Effects
from escalade.service.moves import apply_trigger
from escalade.service.policies import PolicyBook
from escalade.store.rows import EscalationRow


@dataclass(frozen=True)
class AlertIn:
    """A monitoring alert as a webhook brings it (Alertmanager, Prometheus, PagerDuty
    Events v2, a mapped webhook). ``category``, ``customer_email``, ``channel`` and
    ``fields`` come from a mapped webhook; monitoring alerts leave them to ``alerts:``."""

    source: str
    key: str
    status: str  # firing | acknowledged | resolved
    severity: str | None = None
    summary: str = ""
    description: str = ""
    ref: str | None = None
    category: str | None = None
    customer_email: str | None = None
    channel: Channel = Channel.alert
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReceiveAlert:
    book: PolicyBook
    clock: Clock
    create: Create
    act: Act

    def __call__(self, fx: Effects, alert: AlertIn) -> EscalationRow | None:
        """Create, update or resolve the escalation of the alert's key in ``fx``'s unit of
        work (the caller commits). None: a resolved alert with no open escalation."""
        active = self.book.require_active()
        now = self.clock.now()
        w = fx.uow
        dedup = f"{alert.source}:{alert.key}"
        w.locks.acquire(f"alert:{dedup}")  # the same alert at once: one decision at a time
        esc = w.alert_keys.escalation(dedup)  # one indexed lookup
        if esc is not None and is_done(esc.state):
            w.alert_keys.release(dedup)
            esc = None
        if alert.status == "resolved":
            if esc is None:
                return None
            esc = self.act(
                fx,
                esc.ref,
                Action.resolve,
                by=f"alert:{alert.source}",
                now=self.clock.now(),
                reason=f"alert {alert.key} resolved",
            )
            w.alert_keys.release(dedup)
            return esc
        if alert.status == "acknowledged":
            if esc is None:
                return None  # as PagerDuty: acknowledging what is not open changes nothing
            if esc.state == State.open.value:
                return self.act(
                    fx,
                    esc.ref,
                    Action.acknowledge,
                    by=f"alert:{alert.source}",
                    now=now,
                    reason=f"alert {alert.key} acknowledged",
                )
        if esc is not None:
            fx.log(
                esc,
                EventKind.alert_repeated,
                f"alert:{alert.source}",
                now,
                {"key": alert.key, "severity": alert.severity, "summary": alert.summary}
                | ({"status": alert.status} if alert.status != "firing" else {}),
            )
            return esc
        policy = active.policy
        trig = alert_trigger(policy)
        inp = EscalationInput(
            subject=alert.summary or alert.key,
            description=alert.description,
            category=alert.category
            or policy.alerts.category
            or (trig.then.category if trig else None),
            priority=alert_priority(policy, alert.severity)
            or (trig.then.priority if trig else None),
            channel=alert.channel,
            source=alert.source,
            customer=Customer(email=alert.customer_email) if alert.customer_email else Customer(),
            fields={**alert.fields, "alert_key": alert.key},
        )
        esc = self.create(
            fx,
            inp,
            by=f"alert:{alert.source}",
            ref=alert.ref,
            cause="trigger",
            extra_reasons=[
                f"monitoring alert '{alert.key}' from {alert.source} "
                f"({alert.severity or 'no severity'})"
            ],
        )
        w.alert_keys.bind(dedup, esc.id, at=now)
        fx.log(
            esc,
            EventKind.trigger_fired,
            SYSTEM,
            now,
            {
                "trigger": trig.id if trig else "alert",
                "refs": [esc.ref],
                "key": alert.key,
                "created": esc.ref,
            },
        )
        if trig is not None:
            esc = apply_trigger(
                fx, policy, esc, trig, now, f"monitoring alert '{alert.key}'", record=False
            )
        return esc
