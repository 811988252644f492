"""The escalation side of delivery: what happens when a message cannot reach anyone, and
who hears that an escalation was taken.

``gave_up_hook(service)`` is the outbox step's ``on_gave_up``: a message that gave up
(every attempt failed) or is undeliverable (no channel configured, nobody on call, no
address) is recorded on the timeline and raised to the escalation's owner on another
channel; when it was an internal message of an escalation nobody has acknowledged yet,
the escalation's ladder moves to its next step now instead of waiting.

``tell_who_took_it(uow, esc, by, now)`` queues, after an acknowledgement, a notice to
everyone who was paged for the escalation (and an ``acknowledge`` event for each page sent
to PagerDuty or Opsgenie, by its ``dedup_key``). Call it in the acknowledge use case, in
the same unit of work; its keys make a second call a no-op. ``resolve_pages`` does the
same for a resolution: a ``resolve`` event for each page sent to PagerDuty or Opsgenie.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from escalade.engine.outbox import GaveUpHook
from escalade.escalation.kinds import SYSTEM, EventKind, TimerKind
from escalade.escalation.lifecycle import is_done
from escalade.escalation.messages import recipient_messages
from escalade.escalation.notify import ALL_HANDS, apply_handling
from escalade.escalation.snapshot import Snapshot
from escalade.oncall.schedule import Override
from escalade.policy.models import Audience, Policy, Recipient
from escalade.store import EscalationRow, OutboxMessage, OutboxState, UnitOfWork

Pinned = Callable[[UnitOfWork, int], Policy]
Overrides = Mapping[str, Sequence[Override]]

PAGERS = ("pagerduty", "opsgenie")


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def gave_up_hook(
    pinned: Pinned, overrides: Overrides | Callable[[UnitOfWork], Overrides]
) -> GaveUpHook:
    """The outbox step's ``on_gave_up`` for escalations (``pinned``: the policy version an
    escalation started with; ``overrides``: the on-call overrides in force, or what gives
    them for a unit of work)."""

    def on_gave_up(uow: UnitOfWork, message: OutboxMessage, reason: str, now: datetime) -> None:
        if message.escalation_id is None:
            return
        esc = uow.escalations.get(message.escalation_id)
        if esc is None:
            return
        undeliverable = reason.startswith("undeliverable")
        data: dict[str, Any] = {
            "channel": message.channel,
            "to": message.recipient,
            "audience": message.audience,
            "template": message.template,
            "key": message.key,
            **({"step": message.payload["step"]} if message.payload.get("step") else {}),
        }
        kind = (
            EventKind.notification_undeliverable if undeliverable else EventKind.notification_failed
        )
        uow.timeline.append(esc.id, at=now, actor=SYSTEM, kind=kind.value, reason=reason, data=data)
        if message.payload.get("raised") or message.payload.get("after_ack"):
            return  # a raise or a notice that failed is recorded, never raised again
        if is_done(esc.state):
            return
        in_force = overrides(uow) if callable(overrides) else overrides
        raise_to_owner(pinned(uow, esc.policy_version_id), in_force, uow, esc, message, reason, now)
        if message.audience != Audience.customer.value and esc.acknowledged_at is None:
            # a page that reached nobody: the next rung is paged now, not later
            advance_ladder(uow, esc, reason, now)

    return on_gave_up


def raise_to_owner(
    policy: Policy,
    overrides: Overrides,
    uow: UnitOfWork,
    esc: EscalationRow,
    message: OutboxMessage,
    reason: str,
    now: datetime,
) -> int:
    """Tell the escalation's owner (the person who holds it, else its team) that a
    message did not reach its recipient, on another channel than the one that failed.
    Returns how many messages were queued."""
    people = {p.id for p in policy.people}
    who = (
        Recipient(person=esc.owner)
        if esc.owner in people
        else Recipient(team=esc.team)
        if esc.team
        else None
    )
    if who is None:
        return 0
    channel = "chat" if message.channel == "email" else "email"
    why = f"could not reach {message.recipient} by {message.channel}: {reason}"
    planned = recipient_messages(
        policy,
        who,
        channel,
        audience=Audience.internal.value,
        template=None,
        team=esc.team,
        customer_email=None,
        at=now,
        overrides=overrides,
        data={"raised": True, "why": why},
    )
    handling = Snapshot.of(esc.snapshot).decision.handling
    allowed, held = apply_handling(policy, handling, planned)
    for h in held:  # a refusal is recorded with its rule, as every send's is
        uow.timeline.append(
            esc.id,
            at=now,
            actor=SYSTEM,
            kind=(
                EventKind.notification_rerouted if h.rerouted else EventKind.notification_held
            ).value,
            reason=h.reason,
            data={
                "channel": h.message.channel,
                "to": h.message.to,
                "audience": h.message.audience,
                "rule": h.rule,
            },
        )
    queued = 0
    for i, m in enumerate(allowed):
        key = f"esc:{esc.id}:undelivered:{message.id}:{i}:{m.channel}:{m.to}"[:300]
        queued += uow.outbox.enqueue(
            key=key,
            channel=m.channel,
            recipient=m.to,
            audience=m.audience,
            template=None,
            payload={
                "subject": f"{esc.ref}: a notification did not arrive",
                "body": why,
                "via": m.via,
                "ref": esc.ref,
                **m.data,
            },
            at=now,
            escalation_id=esc.id,
        )
    uow.timeline.append(
        esc.id,
        at=now,
        actor=SYSTEM,
        kind=EventKind.notification_raised.value,
        reason=why,
        data={"to": who.label(), "channel": channel, "messages": queued},
    )
    return queued


def advance_ladder(uow: UnitOfWork, esc: EscalationRow, reason: str, now: datetime) -> bool:
    """Bring the escalation's next pending ladder step forward to now (its timer is
    replaced by one due now); False when no step is left."""
    pending = [
        t
        for t in uow.timers.find(escalation_id=esc.id, kind=TimerKind.ladder_step.value)
        if t.due_at > now
    ]
    if not pending:
        uow.timeline.append(
            esc.id,
            at=now,
            actor=SYSTEM,
            kind=EventKind.ladder_exhausted.value,
            reason=f"a notification did not arrive and no ladder step is left ({reason})",
            data={},
        )
        return False
    nxt = min(pending, key=lambda t: (t.due_at, t.id))
    uow.timers.cancel(nxt.key)
    uow.timers.schedule(
        nxt.kind,
        now,
        f"{nxt.key}:early",
        {**nxt.payload, "early": True},
        escalation_id=esc.id,
        created_at=now,
    )
    uow.timeline.append(
        esc.id,
        at=now,
        actor=SYSTEM,
        kind=EventKind.ladder_advanced.value,
        reason=f"a notification did not arrive: {reason}",
        data={"step": int(nxt.payload.get("step", 0)) + 1, "was_due": _iso(nxt.due_at)},
    )
    return True


# the customer and the public status page are never told who took an escalation
_NOT_TOLD = (Audience.customer.value, Audience.status_page.value)


def tell_who_took_it(uow: UnitOfWork, esc: EscalationRow, by: str, now: datetime) -> int:
    """After ``by`` acknowledged ``esc``: a notice to everyone an internal message
    reached before (not the customer, the status page or all hands), on the channel that
    reached them (once per channel and recipient),
    and for each page sent to PagerDuty or Opsgenie an ``acknowledge`` event with that
    page's ``dedup_key``. Returns how many messages were queued."""
    stamp = _iso(now)
    seen: set[tuple[str, str]] = set()
    queued = 0
    for m in uow.outbox.find(escalation_id=esc.id, states=[OutboxState.sent.value]):
        if m.audience in _NOT_TOLD or m.payload.get("after_ack"):
            continue
        if str(m.payload.get("via", "")).startswith(ALL_HANDS):
            continue  # all hands stay on it until it is resolved, whoever took it
        if m.created_at is not None and m.created_at >= now:
            continue
        payload: dict[str, Any] = {
            "subject": f"{esc.ref} acknowledged by {by}",
            "body": f"{by} took {esc.ref} ({esc.subject}) at {stamp}. No need to act.",
            "ref": esc.ref,
            "via": "acknowledgement",
            "after_ack": True,
            "acknowledged_by": by,
        }
        if m.channel in PAGERS:
            payload.update(event_action="acknowledge", dedup_key=m.key)
            key = f"esc:{esc.id}:ack:{stamp}:{m.id}"
        else:
            if (m.channel, m.recipient) in seen or m.recipient == by:
                continue
            seen.add((m.channel, m.recipient))
            key = f"esc:{esc.id}:ack:{stamp}:{m.channel}:{m.recipient}"
        queued += uow.outbox.enqueue(
            key=key[:300],
            channel=m.channel,
            recipient=m.recipient,
            audience=m.audience,
            template=None,
            payload=payload,
            at=now,
            escalation_id=esc.id,
        )
    if queued:
        uow.timeline.append(
            esc.id,
            at=now,
            actor=SYSTEM,
            kind=EventKind.notification_acknowledgement_told.value,
            data={"by": by, "messages": queued},
        )
    return queued


def resolve_pages(uow: UnitOfWork, esc: EscalationRow, by: str, now: datetime) -> int:
    """After ``esc`` was resolved: a ``resolve`` event for each page sent to PagerDuty or
    Opsgenie (by its ``dedup_key`` / alias), so the incident closes there too. Call it in
    the resolve use case, in the same unit of work; a second call is a no-op."""
    stamp = _iso(now)
    queued = 0
    for m in uow.outbox.find(escalation_id=esc.id, states=[OutboxState.sent.value]):
        if m.channel not in PAGERS or m.payload.get("after_ack"):
            continue
        queued += uow.outbox.enqueue(
            key=f"esc:{esc.id}:resolve:{stamp}:{m.id}"[:300],
            channel=m.channel,
            recipient=m.recipient,
            audience=m.audience,
            template=None,
            payload={
                "subject": f"{esc.ref} resolved by {by}",
                "ref": esc.ref,
                "via": "resolution",
                "after_ack": True,
                "event_action": "resolve",
                "dedup_key": m.key,
            },
            at=now,
            escalation_id=esc.id,
        )
    return queued
