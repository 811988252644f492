"""Timer handlers: what happens when an escalation's clock, ladder step or reminder falls due.

Each runs inside the engine's unit of work (never commits) and acts only through it, so
the engine's exactly-once ledger covers everything it does. Times on the timeline are the
timer's due time, or the firing time when it ran late (and then it says ``late: true``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from escalade.durations import format_duration, parse_duration
from escalade.escalation.handoffs import handoff
from escalade.escalation.lifecycle import EscalateCause, State
from escalade.escalation.messages import manager_messages, priority_style, recipient_messages
from escalade.escalation.notify import CUSTOMER_SILENCE, Message, resolve, style_channel
from escalade.escalation.snapshot import followup_timer, snapshot_ladder, update_timers
from escalade.policy.models import (
    Audience,
    Condition,
    Policy,
    Recipient,
    Trigger,
)
from escalade.store import UnitOfWork
from escalade.store.rows import EscalationRow, TimerRow

if TYPE_CHECKING:
    from escalade.escalation.service import EscalationService

SYSTEM = "escalade"
Handler = Callable[
    ["EscalationService", UnitOfWork, Policy, EscalationRow, TimerRow, datetime], None
]


def handle_timer(
    service: EscalationService, uow: UnitOfWork, timer: TimerRow, now: datetime
) -> None:
    """Engine entry point: one due timer (of an escalation, or an on-call hand-off)."""
    if timer.escalation_id is None:
        if timer.kind == "oncall.handoff":
            handoff(service, uow, timer, now)
        return
    esc = uow.escalations.lock(timer.escalation_id)
    if esc is None:
        return
    policy = service.pinned(uow, esc.policy_version_id)
    at = now if timer.late else timer.due_at
    handler = HANDLERS.get(timer.kind)
    if handler is not None:
        handler(service, uow, policy, esc, timer, at)


def _late(timer: TimerRow) -> dict[str, Any]:
    return {"late": True} if timer.late else {}


def _due(timer: TimerRow) -> str:
    return str(timer.payload["due"]).replace("+00:00", "Z")


def clock_stopped(
    service: EscalationService, w: UnitOfWork, esc: EscalationRow, clock: str
) -> bool:
    state = State(esc.state)
    if state in (State.resolved, State.closed):
        return True
    if clock in ("response", "acknowledgement"):
        return esc.acknowledged_at is not None or state is State.investigating
    if clock == "investigation":
        return state is State.investigating
    if clock == "resolution":
        return service._paused_since(w, esc) is not None
    return False


def sla_warning(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    timer: TimerRow,
    at: datetime,
) -> None:
    clock = timer.payload["clock"]
    if clock_stopped(service, w, esc, clock):
        return
    data = {"clock": clock, "due": _due(timer), "source": timer.payload.get("source")}
    if timer.payload.get("target_missed"):
        data["target_missed"] = True  # the target passed; the maximum (``due``) is next
    service._log(w, esc, "sla.warning", SYSTEM, at, {**data, **_late(timer)})


def sla_breach(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    timer: TimerRow,
    at: datetime,
) -> None:
    clock = timer.payload["clock"]
    if clock_stopped(service, w, esc, clock):
        return
    service._log(
        w,
        esc,
        "sla.breached",
        SYSTEM,
        at,
        {"clock": clock, "due": _due(timer), "source": timer.payload.get("source"), **_late(timer)},
    )
    on_breach(service, w, policy, esc, clock, f"{clock} SLA breached", at)


def on_breach(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    clock: str,
    why: str,
    at: datetime,
) -> EscalationRow:
    """The policy's breach actions (``sla.on_breach``), then triggers ``on: sla_breach``."""
    breached_by = esc.team  # whose clock it was, before an escalation hands it on
    for action in esc.snapshot.get("on_breach", []):
        if action == "escalate":
            cause = (
                EscalateCause.no_ack
                if clock in ("response", "acknowledgement")
                else EscalateCause.sla_breach
            )
            esc = service.escalate(
                w, policy, esc, cause=cause, by=SYSTEM, now=at, reason=why, strict=False
            )
        elif action == "notify_manager":
            messages = manager_messages(policy, breached_by, why)
            if not messages:
                service._log(
                    w,
                    esc,
                    "notification.held",
                    SYSTEM,
                    at,
                    {"audience": "internal", "to": f"manager of {breached_by}"},
                    f"team '{breached_by}' has no manager or lead in the policy",
                )
            service._send(w, policy, esc, messages, at, f"breach:{clock}:{esc.version}:manager")
        elif action == "raise_priority":
            esc = raise_priority(service, w, policy, esc, at, why)
    for trig in policy.triggers:
        if trig.on == "sla_breach" and holds_in_flight(trig.when, esc):
            esc = apply_trigger(service, w, policy, esc, trig, at, why)
    return esc


def level_clock(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    timer: TimerRow,
    at: datetime,
) -> None:
    """A level's own clock: its response target after an escalation reached it, or its
    time box. Nothing happens if the escalation has moved on, or (response) if a person
    has answered since it arrived."""
    p = timer.payload
    if esc.level != p["level"] or State(esc.state) in (State.resolved, State.closed):
        return
    since = datetime.fromisoformat(p["since"])
    if p["clock"] == "response" and responded_since(w, esc, since):
        return
    data = {
        "clock": "level response" if p["clock"] == "response" else "level time box",
        "level": p["level"],
        "due": _due(timer),
        "source": f"level {p['level']} "
        + ("response" if p["clock"] == "response" else "resolve_within"),
        **_late(timer),
    }
    if p["stage"] == "warn":
        service._log(w, esc, "sla.warning", SYSTEM, at, data)
        return
    service._log(w, esc, "sla.breached", SYSTEM, at, data)
    if p["clock"] == "timebox":
        why = f"not resolved within level {p['level']}'s time box"
        service.escalate(
            w,
            policy,
            esc,
            cause=EscalateCause.sla_breach,
            by=SYSTEM,
            now=at,
            reason=why,
            strict=False,
        )
    else:
        on_breach(service, w, policy, esc, "response", f"level {p['level']} did not respond", at)


def last_human_action(w: UnitOfWork, esc: EscalationRow) -> datetime | None:
    """When a person last acted on the escalation (not the engine, not the customer)."""
    people_kinds = {
        "escalation.created",
        "escalation.acknowledged",
        "escalation.investigating",
        "escalation.comment",
        "escalation.escalated",
        "escalation.deescalated",
        "escalation.reassigned",
        "escalation.reopened",
    }
    times = [
        e.at
        for e in w.timeline.for_escalation(esc.id)
        if e.kind in people_kinds and (e.actor != SYSTEM or e.kind == "escalation.created")
    ]
    return max(times) if times else None


def responded_since(w: UnitOfWork, esc: EscalationRow, since: datetime) -> bool:
    """Has a person acknowledged, investigated or commented since ``since``?"""
    people = {"escalation.comment", "escalation.acknowledged", "escalation.investigating"}
    return any(
        e.kind in people and e.actor != SYSTEM and e.at >= since
        for e in w.timeline.for_escalation(esc.id)
    )


def holds_in_flight(when: Condition | None, esc: EscalationRow) -> bool:
    """A trigger condition checked against an escalation in flight: its category,
    priority, channel, source and tags as they are now (text conditions were for routing)."""
    if when is None:
        return True
    pkg = esc.package
    checks = []
    if when.category:
        checks.append(esc.category in when.category)
    if when.priority:
        checks.append(esc.priority in when.priority)
    if when.channel:
        checks.append(pkg.get("channel") in {c.value for c in when.channel})
    if when.source:
        checks.append(pkg.get("source") in when.source)
    if when.tags:
        tags = set(esc.snapshot["decision"].get("tags", [])) | set(pkg.get("tags", []))
        checks.append(bool(tags & set(when.tags)))
    return all(checks)


def apply_trigger(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    trig: Trigger,
    at: datetime,
    why: str,
    *,
    record: bool = True,
) -> EscalationRow:
    """A trigger that fires on an escalation in flight: record it (unless the caller did),
    then raise its level or priority and inform whom it names."""
    trigger_id, kind, then = trig.id, trig.kind, trig.then
    if record:
        service._log(
            w, esc, "trigger.fired", SYSTEM, at, {"trigger": trigger_id, "refs": [esc.ref]}, why
        )
    if then.team and then.team != esc.team:
        # the trigger names the team that takes it over (one team at a time)
        team_level = policy.get_team(then.team).level or esc.level
        previous = esc.team
        esc = service._update(w, esc, at, team=then.team, owner=None, level=team_level)
        service._log(
            w,
            esc,
            "escalation.reassigned",
            SYSTEM,
            at,
            {"from": previous, "to": then.team, "by": SYSTEM, "handoff": True},
            f"{kind.value} trigger '{trigger_id}'",
        )
    levels = [lv.id for lv in policy.levels]
    target = then.level or then.min_level
    if (
        target
        and target in levels
        and (esc.level not in levels or levels.index(target) > levels.index(esc.level or target))
    ):
        service.escalate(
            w,
            policy,
            esc,
            cause=EscalateCause.trigger,
            by=SYSTEM,
            now=at,
            to=target,
            reason=f"{kind.value} trigger '{trigger_id}': {why}",
            strict=False,
        )
        esc = w.escalations.get(esc.id) or esc
    wanted = then.priority or then.min_priority
    ids = [p.id for p in policy.priorities]
    if wanted in ids and esc.priority in ids and ids.index(wanted) < ids.index(esc.priority or ""):
        old = esc.priority
        esc = service._update(w, esc, at, priority=wanted)
        service._log(
            w,
            esc,
            "escalation.priority_raised",
            SYSTEM,
            at,
            {"from": old, "to": wanted},
            f"{kind.value} trigger '{trigger_id}'",
        )
    if then.notify:
        role_ids = {r.id for r in policy.roles}
        team_ids = {t.id for t in policy.teams}
        messages: list[Message] = []
        for who_id in then.notify:
            key = "role" if who_id in role_ids else "team" if who_id in team_ids else "person"
            messages.extend(
                recipient_messages(
                    policy,
                    Recipient.model_validate({key: who_id}),
                    "email",
                    audience=Audience.stakeholder.value,
                    template=None,
                    team=esc.team,
                    customer_email=None,
                    at=at,
                    overrides=service.overrides,
                )
            )
        service._send(w, policy, esc, messages, at, f"trigger:{trigger_id}")
    return esc


def raise_priority(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    now: datetime,
    why: str,
) -> EscalationRow:
    ids = [p.id for p in policy.priorities]
    if esc.priority not in ids or ids.index(esc.priority or "") == 0:
        return esc
    new = ids[ids.index(esc.priority or "") - 1]
    old = esc.priority
    esc = service._update(w, esc, now, priority=new)
    service._log(w, esc, "escalation.priority_raised", SYSTEM, now, {"from": old, "to": new}, why)
    return esc


def ladder_step(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    timer: TimerRow,
    at: datetime,
) -> None:
    ladder = snapshot_ladder(esc.snapshot)
    if ladder is None:
        return
    index = timer.payload["step"]
    step = ladder.steps[index]
    if stops(service, w, esc, [str(u) for u in step.unless]):
        return
    levels = [lv.id for lv in policy.levels]
    if (
        step.level
        and step.level != esc.level
        and esc.level in levels
        and levels.index(step.level) > levels.index(esc.level or step.level)
    ):
        from_level = esc.level
        esc = service._update(w, esc, at, level=step.level)
        service.arm_level(w, policy, esc, at, response=False)
        service._log(
            w,
            esc,
            "escalation.escalated",
            SYSTEM,
            at,
            {
                "from_level": from_level,
                "to_level": step.level,
                "team": esc.team,
                "cause": EscalateCause.ladder_step.value,
                "via": f"ladder '{ladder.id}' step {index + 1} at {format_duration(step.after)}",
                **_late(timer),
            },
        )
    channel = (
        step.channel.value if step.channel else style_channel(priority_style(policy, esc.priority))
    )
    data = {
        "step": index + 1,
        "ladder": ladder.id,
        **({"note": step.note} if step.note else {}),
        **_late(timer),
    }
    messages: list[Message] = []
    for who in step.notify:
        messages.extend(
            recipient_messages(
                policy,
                who,
                "email" if who.customer else channel,
                audience=Audience.customer.value if who.customer else Audience.internal.value,
                template=step.template,
                team=esc.team,
                customer_email=esc.customer.get("email"),
                at=at,
                overrides=service.overrides,
                data=data,
            )
        )
    service._send(w, policy, esc, messages, at, f"ladder:{timer.key}")


def stops(
    service: EscalationService, w: UnitOfWork, esc: EscalationRow, unless: Sequence[str]
) -> bool:
    """Whether a ladder step's ``unless`` has happened (resolution always stops a ladder)."""
    state = State(esc.state)
    if state in (State.resolved, State.closed):
        return True
    if "acknowledged" in unless and esc.acknowledged_at is not None:
        return True
    if "responded" in unless:
        if esc.acknowledged_at is not None or state is not State.open:
            return True
        people = {"escalation.comment", "escalation.acknowledged", "escalation.investigating"}
        return any(
            e.kind in people and e.actor != SYSTEM for e in w.timeline.for_escalation(esc.id)
        )
    return False


def _customer_silenced(policy: Policy, esc: EscalationRow) -> str | None:
    handling = set(esc.snapshot["decision"].get("handling", []))
    for rule in policy.handling:
        if rule.id in handling and rule.kind in CUSTOMER_SILENCE:
            return rule.id
    return None


def _remind(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    timer: TimerRow,
    at: datetime,
    data: dict[str, Any],
    about_customer: bool,
) -> None:
    """A reminder is due, unless it is about talking to a customer that a handling rule
    keeps silent (then it is recorded as held, with the rule)."""
    silenced = _customer_silenced(policy, esc) if about_customer else None
    if silenced:
        service._log(
            w,
            esc,
            "reminder.held",
            SYSTEM,
            at,
            {**data, "rule": silenced, **_late(timer)},
            f"handling rule '{silenced}': no communication with the customer",
        )
    else:
        service._log(w, esc, "reminder.due", SYSTEM, at, {**data, **_late(timer)})


def followup(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    timer: TimerRow,
    at: datetime,
) -> None:
    if State(esc.state) in (State.resolved, State.closed):
        return
    index, n = timer.payload["index"], timer.payload["n"]
    f = esc.snapshot["followups"][index]
    generation = timer.payload.get("generation", 0)
    if f.get("if_idle"):
        last = last_human_action(w, esc)
        every = parse_duration(f["every"])
        if last is not None and last + every > at:
            # someone acted since: the quiet period counts again from their action
            service._schedule(
                w,
                [followup_timer(esc.snapshot, esc.id, index, last, n + 1, generation)],
                esc,
                at,
            )
            return
    who = Recipient.model_validate(f["to"])
    targets = resolve(
        policy,
        who,
        team=esc.team,
        customer_email=esc.customer.get("email"),
        at=at,
        overrides=service.overrides,
    )
    data = {"what": f["what"], "to": ", ".join(t for t, _ in targets) or who.label()}
    about_customer = f.get("audience") == Audience.customer.value
    _remind(service, w, policy, esc, timer, at, data, about_customer)
    service._schedule(
        w, [followup_timer(esc.snapshot, esc.id, index, at, n + 1, generation)], esc, at
    )


def update_due(
    service: EscalationService,
    w: UnitOfWork,
    policy: Policy,
    esc: EscalationRow,
    timer: TimerRow,
    at: datetime,
) -> None:
    if State(esc.state) in (State.resolved, State.closed):
        return
    audience = timer.payload["audience"]
    data = {"what": f"{audience} update", "to": esc.owner or f"team:{esc.team}"}
    _remind(service, w, policy, esc, timer, at, data, audience in ("customer", "external"))
    generation = timer.payload.get("generation", 0)
    nxt = update_timers(esc.snapshot, esc.id, at, timer.payload["n"] + 1, generation, audience)
    service._schedule(w, nxt, esc, at)


HANDLERS: dict[str, Handler] = {
    "sla.warning": sla_warning,
    "sla.breach": sla_breach,
    "ladder.step": ladder_step,
    "followup": followup,
    "update.due": update_due,
    "level.clock": level_clock,
}
