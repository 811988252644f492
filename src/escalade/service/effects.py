"""The one object through which a use case changes the run-time world, inside one unit of
work: append to the timeline, queue messages in the outbox, update the escalation's row,
schedule timers, and read whether its resolution clock is paused.

Use cases never reach into each other's internals; everything they do to the world goes
through here, so it is committed (or rolled back) together, and the engine's exactly-once
ledger covers what a timer handler does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from escalade.auth.visibility import confidentiality, escalation_teams
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.messages import handling_of, template_context
from escalade.escalation.notify import (
    Held,
    Message,
    apply_handling,
    permitted_only,
    render_message,
)
from escalade.escalation.snapshot import PlannedTimer, Snapshot
from escalade.oncall.schedule import Override
from escalade.policy.models import Policy
from escalade.store import UnitOfWork
from escalade.store.rows import EscalationRow, NewAuditEntry, TimelineEntry

Overrides = Mapping[str, Sequence[Override]]


@dataclass(frozen=True)
class Effects:
    """The run-time world of one unit of work, as use cases see it."""

    uow: UnitOfWork
    overrides: Overrides

    # ---------------------------------------------------------------- the timeline

    def log(
        self,
        esc: EscalationRow,
        kind: EventKind,
        actor: str,
        at: datetime,
        data: dict[str, Any],
        reason: str | None = None,
    ) -> None:
        """Append one entry to the escalation's timeline."""
        self.uow.timeline.append(
            esc.id, at=at, actor=actor, kind=kind.value, reason=reason, data=data
        )

    def timeline(self, esc: EscalationRow) -> list[TimelineEntry]:
        return self.uow.timeline.for_escalation(esc.id)

    def paused_since(self, esc: EscalationRow) -> datetime | None:
        """When the resolution clock was paused (waiting on the customer), if it is."""
        paused: datetime | None = None
        for e in self.timeline(esc):
            if e.kind == EventKind.sla_paused:
                paused = e.at
            elif e.kind == EventKind.sla_resumed:
                paused = None
        return paused

    # ---------------------------------------------------------------- the audit log

    def audit(self, entry: NewAuditEntry) -> None:
        """Append one entry to the audit log in this unit of work: it commits with the
        change it records, or neither does."""
        self.uow.audit.append(entry)

    # ---------------------------------------------------------------- the row

    def update(self, esc: EscalationRow, at: datetime, **changes: Any) -> EscalationRow:
        """Change the escalation's row (optimistic: from the version the caller holds)."""
        return self.uow.escalations.update(esc.id, expected_version=esc.version, at=at, **changes)

    # ---------------------------------------------------------------- timers

    def schedule(self, esc: EscalationRow, timers: Sequence[PlannedTimer], at: datetime) -> None:
        """Durable timers of the escalation, committed with the change that needs them."""
        for t in timers:
            self.uow.timers.schedule(
                t.kind.value, t.due_at, t.key, t.payload, escalation_id=esc.id, created_at=at
            )

    # ---------------------------------------------------------------- messages

    def send(
        self,
        policy: Policy,
        esc: EscalationRow,
        messages: Sequence[Message],
        at: datetime,
        event: str,
        *,
        resolution: str | None = None,
    ) -> None:
        """Queue messages in the outbox as the escalation's handling rules allow them (and,
        when it is confidential, only to those who may see it); a message held back or
        moved to another channel is recorded with its rule. Each is rendered from its
        template, or the default one for its audience and channel."""
        handling = Snapshot.of(esc.snapshot).decision.handling
        allowed, held = apply_handling(policy, handling, messages)
        conf = confidentiality(policy, esc.category, handling)
        if conf is not None:
            allowed, hidden = permitted_only(
                policy,
                allowed,
                teams=escalation_teams(esc.team, esc.snapshot),
                visible_to=conf.visible_to,
                forward_to=handling_of(policy, handling)["forward_to"],
                rule="confidential",
                because=conf.because,
            )
            held = [*held, *hidden]
        self._record_held(esc, held, at)
        context = template_context(
            esc, policy, at, resolution=resolution, resolved_at=esc.resolved_at
        )
        for i, m in enumerate(allowed):
            text = render_message(policy, m, context)
            key = f"esc:{esc.id}:{event}:{i}:{m.channel}:{m.to}"
            self.uow.outbox.enqueue(
                key=key[:300],
                channel=m.channel,
                recipient=m.to,
                audience=m.audience,
                template=m.template,
                payload={
                    "subject": text.subject,
                    "body": text.body,
                    "rendered_from": text.template,
                    "via": m.via,
                    "ref": esc.ref,
                    **m.data,
                },
                at=at,
                escalation_id=esc.id,
            )

    def _record_held(self, esc: EscalationRow, held: Sequence[Held], at: datetime) -> None:
        for h in held:
            self.log(
                esc,
                EventKind.notification_rerouted if h.rerouted else EventKind.notification_held,
                SYSTEM,
                at,
                {
                    "channel": h.message.channel,
                    "to": h.message.to,
                    "audience": h.message.audience,
                    "rule": h.rule,
                },
                h.reason,
            )
