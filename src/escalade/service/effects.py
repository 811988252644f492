"""The one object through which a use case changes the run-time world, inside one unit of
work: append to the timeline, queue messages in the outbox, update the escalation's row,
schedule timers, and read whether its resolution clock is paused.

Use cases never reach into each other's internals; everything they do to the world goes
through here, so it is committed (or rolled back) together, and the engine's exactly-once
ledger covers what a timer handler does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from escalade.auth.visibility import confidentiality, escalation_teams
from escalade.engine.wakeup import note_due
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
from escalade.store import NewEntry, NewMessage, NewTimer, UnitOfWork
from escalade.store.rows import EscalationRow, NewAuditEntry, TimelineEntry

Overrides = Mapping[str, Sequence[Override]]


@dataclass
class Pending:
    """What a use case appended, queued and scheduled, not yet written: the unit of work
    writes it as three multi-row statements (timeline, timers, outbox) before it next reads
    or writes anything else, ends a savepoint, or commits (``UnitOfWork.defer``)."""

    uow: UnitOfWork
    entries: list[NewEntry] = field(default_factory=list)
    timers: list[tuple[NewTimer, datetime | None]] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    waiting: bool = False

    def hold(self) -> None:
        if not self.waiting:
            self.waiting = True
            self.uow.defer(self)

    def flush(self) -> None:
        entries, timers, messages = self.entries, self.timers, self.messages
        self.discard()
        w = self.uow
        w.timeline.append_many(entries)
        w.outbox.enqueue_many(messages)
        # one created_at per statement: timers scheduled at different instants in one unit of
        # work (rare) go in one statement per instant, in order
        start = 0
        for i in range(1, len(timers) + 1):
            if i == len(timers) or timers[i][1] != timers[start][1]:
                w.timers.schedule_many([t for t, _ in timers[start:i]], created_at=timers[start][1])
                start = i

    def discard(self) -> None:
        self.entries, self.timers, self.messages = [], [], []
        self.waiting = False


@dataclass(frozen=True)
class Effects:
    """The run-time world of one unit of work, as use cases see it. What it appends,
    queues and schedules is written in a few multi-row statements (``Pending``)."""

    uow: UnitOfWork
    overrides: Overrides
    pending: Pending = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pending", Pending(self.uow))

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
        self.pending.entries.append(NewEntry(esc.id, at, actor, kind.value, reason, data))
        self.pending.hold()

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
            self.pending.timers.append(
                (NewTimer(t.kind.value, t.due_at, t.key, t.payload, escalation_id=esc.id), at)
            )
        if timers:
            self.pending.hold()
            note_due(min(t.due_at for t in timers))  # wake the engine if that is sooner

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
            self.pending.messages.append(
                NewMessage(
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
            )
        if allowed:
            self.pending.hold()
            note_due(at)  # messages go out at once

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
