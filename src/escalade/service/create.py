"""The ``create`` use case: route, store, notify and start the clocks of a new escalation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from escalade.clock import Clock
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.messages import created_messages, ticket_notes, with_ref
from escalade.escalation.snapshot import (
    Snapshot,
    build_snapshot,
    followup_timers,
    ladder_timers,
    sla_timers,
)
from escalade.routing.models import EscalationInput
from escalade.service.effects import Effects
from escalade.service.errors import ActionRefused
from escalade.service.incidents import related_threshold
from escalade.service.moves import arm_level
from escalade.service.policies import PolicyBook
from escalade.store.rows import EscalationRow

OWN_REF = re.compile(r"ESC-\d+")
"""The refs Escalade gives (a caller's own ``ref`` may not look like one)."""


@dataclass
class Create:
    book: PolicyBook
    clock: Clock

    def __call__(
        self,
        fx: Effects,
        inp: EscalationInput,
        *,
        by: str = "api",
        ref: str | None = None,
        parent_id: int | None = None,
        cause: str | None = None,
        extra_reasons: Sequence[str] = (),
    ) -> EscalationRow:
        """Route, store, notify and start the clocks of a new escalation in ``fx``'s unit
        of work (the caller commits)."""
        active = self.book.require_active()
        now = self.clock.now()
        decision = active.router.route(inp, now)
        w = fx.uow
        if ref is not None and OWN_REF.fullmatch(ref):
            raise ActionRefused(
                f"'{ref}': names of the form ESC-<number> are given by Escalade; "
                "choose another ref, or leave it out"
            )
        if ref is not None:
            w.locks.acquire(f"ref:{ref}")  # concurrent creates with one ref: one wins
            if w.escalations.get_by_ref(ref) is not None:
                raise ActionRefused(f"an escalation named '{ref}' already exists")
        stored = build_snapshot(active.policy, decision, inp.channel, now, inp.amount)
        esc = w.escalations.add(
            policy_version_id=active.version_id,
            snapshot=stored,
            at=now,
            ref=ref,
            subject=inp.subject,
            category=decision.category,
            team=decision.team or None,
            level=decision.level,
            priority=decision.priority,
            customer=inp.customer.model_dump(mode="json", exclude_none=True),
            package=inp.model_dump(mode="json", exclude_none=True),
            parent_id=parent_id,
        )
        snap = Snapshot.of(esc.snapshot)
        fx.log(
            esc,
            EventKind.escalation_created,
            by,
            now,
            {
                "team": decision.team,
                "level": decision.level,
                "priority": decision.priority,
                "category": decision.category,
                "reasons": [*extra_reasons, *decision.reasons],
                "handling": decision.handling,
                "missing": decision.missing,
                "needs_triage": decision.needs_triage,
                **({"also": decision.also} if decision.also else {}),
                **({"never": decision.never} if decision.never else {}),
                **({"forward_to": decision.forward_to} if decision.forward_to else {}),
                **({"cause": cause} if cause else {}),
                "policy_version": active.version_id,
            },
        )
        for trig in decision.triggers:
            fx.log(esc, EventKind.trigger_fired, SYSTEM, now, {"trigger": trig, "refs": [esc.ref]})
        policy = active.policy
        for rule_id, note in ticket_notes(policy, decision.handling):
            # "Note in ticket: 'Escalated to Legal'" (seed 003): a note on the timeline
            fx.log(
                esc,
                EventKind.escalation_comment,
                SYSTEM,
                now,
                {"by": SYSTEM, "text": note, "handling": rule_id},
            )
        messages = created_messages(policy, decision, esc.customer.get("email"), now, fx.overrides)
        messages = with_ref(messages, esc.ref)  # e.g. a war room '#war-room-{ref}'
        fx.send(policy, esc, messages, now, "created")
        fx.schedule(esc, [*sla_timers(snap, esc.id, now), *ladder_timers(snap, esc.id, now)], now)
        fx.schedule(esc, followup_timers(snap, esc.id, now), now)
        arm_level(fx, policy, esc, now, response=False)  # its time box
        related_threshold(fx, policy, esc, now, self._open_incident)
        return esc

    def _open_incident(
        self,
        fx: Effects,
        inp: EscalationInput,
        *,
        by: str,
        cause: str,
        extra_reasons: Sequence[str],
    ) -> EscalationRow:
        return self(fx, inp, by=by, cause=cause, extra_reasons=extra_reasons)
