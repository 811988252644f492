"""Related-issue incidents: several related escalations within a window become one parent
incident that links them (seed 000: "multiple related issues"; a threshold trigger with
``related:``).

Related escalations are found by their grouping key and creation time (an index), never by
reading every open escalation; an escalation with no value for a key (no customer, say) is
related to nothing by it; relations stay within one policy. Deciding whether the incident
exists is done under the key's lock, so concurrent escalations open one incident, exactly
as one at a time would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from escalade.durations import format_duration
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.lifecycle import is_done
from escalade.escalation.triggers import grouping_keys, related_triggers
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


def related_threshold(
    fx: Effects, policy: Policy, esc: EscalationRow, now: datetime, open_escalation: Opener
) -> None:
    """File a new escalation under its grouping keys; several related escalations within
    a window become one parent incident, and a new related one joins it while it is open."""
    keys = grouping_keys(policy, esc)
    if not keys:
        return
    w = fx.uow
    w.groups.add(esc.id, sorted(set(keys.values())), at=now)
    for trig in related_triggers(policy):
        th = trig.threshold
        assert th is not None and th.related is not None
        key = keys.get(th.related)
        if key is None:
            continue
        value = key.split(":", 2)[2]
        incident_key = f"{trig.id}:{value}"
        binding = f"incident:{policy.id}:{incident_key}"
        w.locks.acquire(binding)  # one decision at a time per incident
        parent_id = w.alert_keys.get(binding)
        parent = w.escalations.get(parent_id) if parent_id is not None else None
        if parent is not None and is_done(parent.state):
            w.alert_keys.release(binding)  # that incident is over
            parent = None
        if parent is not None:
            recent = [esc]  # the incident is open already: a new related one joins it
        else:
            earlier = [
                e for e in w.groups.active_members(key, since=now - th.window) if e.id != esc.id
            ]
            recent = [*earlier, esc]
            if len(recent) <= th.more_than:
                continue
        refs = [e.ref for e in recent]
        created = parent is None
        if parent is None:
            inp = EscalationInput(
                subject=f"Incident: {len(recent)} related escalations ({th.related} {value})",
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
            w.alert_keys.bind(binding, parent.id, at=now)
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
