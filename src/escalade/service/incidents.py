"""Related-issue incidents: several related escalations within a window become one parent
incident that links them (seed 000: "multiple related issues"; a threshold trigger with
``related:``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from escalade.durations import format_duration
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.lifecycle import ACTIVE_STATES
from escalade.escalation.triggers import related_key, related_triggers
from escalade.policy.models import Policy
from escalade.routing.models import EscalationInput
from escalade.service.effects import Effects
from escalade.service.moves import apply_trigger
from escalade.store.rows import EscalationRow


class Opener(Protocol):
    """Opens an escalation in the caller's unit of work (the ``create`` use case)."""

    def __call__(
        self,
        fx: Effects,
        inp: EscalationInput,
        *,
        by: str,
        cause: str,
        extra_reasons: Sequence[str],
    ) -> EscalationRow: ...


def _is_incident(e: EscalationRow) -> bool:
    return bool(e.package.get("fields", {}).get("incident"))


def related_threshold(
    fx: Effects, policy: Policy, esc: EscalationRow, now: datetime, open_escalation: Opener
) -> None:
    """Several related escalations within a window become one parent incident; a new
    related escalation joins the incident while it is open."""
    if _is_incident(esc):
        return
    w = fx.uow
    for trig in related_triggers(policy):
        th = trig.threshold
        assert th is not None and th.related is not None
        if th.related == "category" and esc.category is None:
            continue
        key = related_key(th.related, esc)
        incident_key = f"{trig.id}:{key}"
        parent_id = w.alert_keys.get(f"incident:{incident_key}")
        parent = w.escalations.get(parent_id) if parent_id is not None else None
        if parent is not None and parent.state not in ACTIVE_STATES:
            w.alert_keys.release(f"incident:{incident_key}")  # that incident is over
            parent = None
        if parent is not None:
            recent = [esc]  # the incident is open already: a new related one joins it
        else:
            earlier = [
                e
                for e in w.escalations.find(
                    states=ACTIVE_STATES,
                    category=esc.category if th.related == "category" else None,
                    created_since=now - th.window,
                    top_level=True,
                    limit=1000,
                )
                if e.id != esc.id and related_key(th.related, e) == key and not _is_incident(e)
            ]
            recent = [*sorted(earlier, key=lambda e: e.id), esc]
            if len(recent) <= th.more_than:
                continue
        refs = [e.ref for e in recent]
        created = parent is None
        if parent is None:
            inp = EscalationInput(
                subject=f"Incident: {len(recent)} related escalations ({th.related} {key})",
                description="\n".join(f"{e.ref}: {e.subject}" for e in recent),
                category=trig.then.category or esc.category,
                priority=trig.then.priority or esc.priority,
                source="threshold",
                fields={"incident": incident_key},
            )
            parent = open_escalation(
                fx,
                inp,
                by=SYSTEM,
                cause="threshold",
                extra_reasons=[
                    f"threshold trigger '{trig.id}': more than {th.more_than} related "
                    f"escalations within {format_duration(th.window)}"
                ],
            )
            w.alert_keys.bind(f"incident:{incident_key}", parent.id, at=now)
            # the rest of the trigger's outcome: a level, a priority floor, people to tell
            parent = apply_trigger(
                fx, policy, parent, trig, now, f"threshold trigger '{trig.id}'", record=False
            )
        for e in recent:
            if e.parent_id is None and e.id != parent.id:
                w.escalations.update(
                    e.id,
                    expected_version=(w.escalations.get(e.id) or e).version,
                    at=now,
                    parent_id=parent.id,
                )
        fx.log(
            parent,
            EventKind.trigger_fired,
            SYSTEM,
            now,
            {
                "trigger": trig.id,
                "refs": refs,
                **({"created": parent.ref} if created else {"incident": parent.ref}),
            },
        )
