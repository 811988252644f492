"""Threshold triggers over related escalations: several related escalations within a
window become one parent incident that links them (seed 000: "multiple related issues")."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

from escalade.durations import format_duration
from escalade.escalation.handlers import apply_trigger
from escalade.policy.models import Policy, TriggerKind
from escalade.routing.models import EscalationInput
from escalade.store import UnitOfWork
from escalade.store.rows import EscalationRow

if TYPE_CHECKING:
    from escalade.escalation.service import EscalationService

SYSTEM = "escalade"
OPEN = ["open", "acknowledged", "investigating"]


def related_threshold(
    service: EscalationService, w: UnitOfWork, policy: Policy, esc: EscalationRow, now: datetime
) -> None:
    """Several related escalations within a window become one parent incident."""
    if esc.package.get("fields", {}).get("incident"):
        return
    for trig in policy.triggers:
        th = trig.threshold
        if trig.kind is not TriggerKind.threshold or th is None or th.related is None:
            continue
        if th.related == "category" and esc.category is None:
            continue
        incident_key = f"{trig.id}:{related_key(th.related, esc)}"
        parent_id = w.alert_keys.get(f"incident:{incident_key}")
        parent = w.escalations.get(parent_id) if parent_id is not None else None
        if parent is not None and parent.state not in OPEN:
            w.alert_keys.release(f"incident:{incident_key}")  # that incident is over
            parent = None
        if parent is not None:
            recent = [esc]  # the incident is open already: a new related one joins it
        else:
            since = now - th.window
            earlier = [
                e
                for e in w.escalations.find(
                    states=OPEN,
                    category=esc.category if th.related == "category" else None,
                    created_since=since,
                    top_level=True,
                    limit=1000,
                )
                if e.id != esc.id
                and related_key(th.related, e) == related_key(th.related, esc)
                and not e.package.get("fields", {}).get("incident")
            ]
            recent = [*sorted(earlier, key=lambda e: e.id), esc]
            if len(recent) <= th.more_than:
                continue
        refs = [e.ref for e in recent]
        created = parent is None
        if parent is None:
            inp = EscalationInput(
                subject=(
                    f"Incident: {len(recent)} related escalations "
                    f"({th.related} {related_key(th.related, esc)})"
                ),
                description="\n".join(f"{e.ref}: {e.subject}" for e in recent),
                category=trig.then.category or esc.category,
                priority=trig.then.priority or esc.priority,
                source="threshold",
                fields={"incident": incident_key},
            )
            parent = service.create(
                inp,
                by=SYSTEM,
                cause="threshold",
                uow=w,
                extra_reasons=[
                    f"threshold trigger '{trig.id}': more than {th.more_than} related "
                    f"escalations within {format_duration(th.window)}"
                ],
            )
            w.alert_keys.bind(f"incident:{incident_key}", parent.id, at=now)
            # the rest of the trigger's outcome: a level, a priority floor, people to tell
            parent = apply_trigger(
                service,
                w,
                policy,
                parent,
                trig,
                now,
                f"threshold trigger '{trig.id}'",
                record=False,
            )
        for e in recent:
            if e.parent_id is None and e.id != parent.id:
                w.escalations.update(
                    e.id,
                    expected_version=(w.escalations.get(e.id) or e).version,
                    at=now,
                    parent_id=parent.id,
                )
        service._log(
            w,
            parent,
            "trigger.fired",
            SYSTEM,
            now,
            {
                "trigger": trig.id,
                "refs": refs,
                **({"created": parent.ref} if created else {"incident": parent.ref}),
            },
        )


def related_key(kind: str, e: EscalationRow) -> str:
    if kind == "category":
        return str(e.category)
    if kind == "customer":
        return str(e.customer.get("email") or e.customer.get("id"))
    if kind == "alert_key":
        return str(e.package.get("fields", {}).get("alert_key"))
    return hashlib.sha1(e.subject.lower().encode()).hexdigest()[:12]
