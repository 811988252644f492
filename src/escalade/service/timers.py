"""Timer use cases: what happens when an escalation's clock, ladder step or reminder falls
due, and the on-call hand-offs.

Each runs inside the engine's unit of work (never commits) and acts only through its
:class:`Effects`, so the engine's exactly-once ledger covers everything it does. Times on
the timeline are the timer's due time, or the firing time when it ran late (and then it
says ``late: true``). A timer of a kind nobody handles fails loudly (``UnknownTimerKind``):
the engine retries it with backoff and then marks it failed, never done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from escalade.durations import format_duration
from escalade.errors import EscaladeError
from escalade.escalation.kinds import PERSON_ACTIONS, RESPONSES, SYSTEM, EventKind, TimerKind
from escalade.escalation.lifecycle import EscalateCause, State, is_done
from escalade.escalation.messages import priority_style, recipient_messages
from escalade.escalation.notify import CUSTOMER_SILENCE, Message, resolve, style_channel
from escalade.escalation.snapshot import Snapshot, followup_timer, update_timers
from escalade.oncall.schedule import Override
from escalade.policy.models import Audience, Policy
from escalade.service.effects import Effects
from escalade.service.handoffs import handoff
from escalade.service.moves import (
    arm_level,
    breach_cap,
    escalate,
    level_team_messages,
    management_alert,
    on_breach,
)
from escalade.store import UnitOfWork
from escalade.store.rows import EscalationRow, TimerRow

Handler = Callable[[Effects, Policy, EscalationRow, TimerRow, datetime], None]
Pinned = Callable[[UnitOfWork, int], Policy]


class UnknownTimerKind(EscaladeError):
    """A due timer of a kind no handler knows (retried, then marked failed)."""


def fire(
    uow: UnitOfWork,
    timer: TimerRow,
    now: datetime,
    *,
    pinned: Pinned,
    overrides: Mapping[str, Sequence[Override]],
) -> None:
    """Engine entry point: one due timer (of an escalation, or an on-call hand-off)."""
    if timer.escalation_id is None:
        if timer.kind != TimerKind.oncall_handoff:
            raise UnknownTimerKind(f"timer {timer.key}: no handler for kind '{timer.kind}'")
        policy = pinned(uow, int(timer.payload["policy_version"]))
        schedule_overrides = overrides.get(str(timer.payload["schedule"]), ())
        handoff(uow, policy, timer, now, schedule_overrides)
        return
    handler = HANDLERS.get(timer.kind)
    if handler is None:
        raise UnknownTimerKind(f"timer {timer.key}: no handler for kind '{timer.kind}'")
    esc = uow.escalations.lock(timer.escalation_id)
    if esc is None:
        return  # its escalation is gone (the timer's foreign key makes this rare)
    policy = pinned(uow, esc.policy_version_id)
    at = now if timer.late else timer.due_at
    handler(Effects(uow, overrides), policy, esc, timer, at)


def _late(timer: TimerRow) -> dict[str, Any]:
    return {"late": True} if timer.late else {}


def _due(timer: TimerRow) -> str:
    return str(timer.payload["due"]).replace("+00:00", "Z")


def clock_stopped(fx: Effects, esc: EscalationRow, clock: str) -> bool:
    state = State(esc.state)
    if is_done(state):
        return True
    if clock in ("response", "acknowledgement"):
        return esc.acknowledged_at is not None or state is State.investigating
    if clock == "investigation":
        return state is State.investigating
    if clock == "resolution":
        return fx.paused_since(esc) is not None
    return False


def sla_warning(
    fx: Effects, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
) -> None:
    clock = timer.payload["clock"]
    if clock_stopped(fx, esc, clock):
        return
    data = {"clock": clock, "due": _due(timer), "source": timer.payload.get("source")}
    if timer.payload.get("target_missed"):
        data["target_missed"] = True  # the target passed; the maximum (``due``) is next
    fx.log(esc, EventKind.sla_warning, SYSTEM, at, {**data, **_late(timer)})


def sla_breach(
    fx: Effects, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
) -> None:
    clock = timer.payload["clock"]
    if clock_stopped(fx, esc, clock):
        return
    fx.log(
        esc,
        EventKind.sla_breached,
        SYSTEM,
        at,
        {"clock": clock, "due": _due(timer), "source": timer.payload.get("source"), **_late(timer)},
    )
    on_breach(fx, policy, esc, clock, f"{clock} SLA breached", at)


def level_clock(
    fx: Effects, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
) -> None:
    """A level's own clock: its response target after an escalation reached it, or its
    time box. Nothing happens if the escalation has moved on, or (response) if a person
    has answered since it arrived."""
    p = timer.payload
    if esc.level != p["level"] or is_done(esc.state):
        return
    if p.get("team") is not None and esc.team != p["team"]:
        return  # the team whose response it was has handed it on
    since = datetime.fromisoformat(p["since"])
    if p["clock"] == "response" and responded_since(fx, esc, since):
        return
    data = {
        "clock": "level response" if p["clock"] == "response" else "level time box",
        "level": p["level"],
        "due": _due(timer),
        "source": p.get("source")
        or f"level {p['level']} " + ("response" if p["clock"] == "response" else "resolve_within"),
        **({"team": p.get("responder") or p["team"]} if p.get("team") is not None else {}),
        **_late(timer),
    }
    if p["stage"] == "warn":
        fx.log(esc, EventKind.sla_warning, SYSTEM, at, data)
        return
    fx.log(esc, EventKind.sla_breached, SYSTEM, at, data)
    if p["clock"] == "timebox":
        why = f"not resolved within level {p['level']}'s time box"
        cap = breach_cap(policy, esc)
        if cap is not None and not policy.raises_level(esc.level, cap):
            management_alert(fx, policy, esc, "timebox", why, at, cap)
            return
        escalate(
            fx,
            policy,
            esc,
            cause=EscalateCause.sla_breach,
            by=SYSTEM,
            now=at,
            reason=why,
            strict=False,
        )
    else:
        who = (
            f"team {p.get('responder') or p['team']}"
            if p.get("team") is not None
            else f"level {p['level']}"
        )
        on_breach(fx, policy, esc, "response", f"{who} did not respond", at)


def last_human_action(fx: Effects, esc: EscalationRow) -> datetime | None:
    """When a person last acted on the escalation (not the engine, not the customer)."""
    times = [
        e.at
        for e in fx.timeline(esc)
        if e.kind in PERSON_ACTIONS
        and (e.actor != SYSTEM or e.kind == EventKind.escalation_created)
    ]
    return max(times) if times else None


def responded_since(fx: Effects, esc: EscalationRow, since: datetime) -> bool:
    """Has a person acknowledged, investigated or commented since ``since``?"""
    return any(
        e.kind in RESPONSES and e.actor != SYSTEM and e.at >= since for e in fx.timeline(esc)
    )


def ladder_step(
    fx: Effects, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
) -> None:
    ladder = Snapshot.of(esc.snapshot).ladder
    if ladder is None:
        return
    index = timer.payload["step"]
    step = ladder.steps[index]
    if stops(fx, esc, [str(u) for u in step.unless]):
        return
    if (
        step.level
        and step.level != esc.level
        and policy.is_level(esc.level)
        and policy.raises_level(esc.level, step.level)
    ):
        # A ladder runs on its timetable whoever works the escalation: the level's people
        # are told (below), the team and the person who took it keep it (seed 002's
        # "Billing → Tier 3" path still starts from Tier 1 after the P1 page).
        from_level = esc.level
        esc = fx.update(esc, at, level=step.level)
        arm_level(fx, policy, esc, at, response=True)  # the level reached must answer
        fx.log(
            esc,
            EventKind.escalation_escalated,
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
        level_people = level_team_messages(policy, esc, step.level, step.notify, at, fx.overrides)
        fx.send(policy, esc, level_people, at, f"ladder:{timer.key}:level")
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
                audience=(
                    Audience.customer.value
                    if who.customer
                    else Audience.status_page.value
                    if who.status_page
                    else Audience.internal.value
                ),
                template=step.template,
                team=esc.team,
                customer_email=esc.customer.get("email"),
                at=at,
                overrides=fx.overrides,
                data=data,
            )
        )
    fx.send(policy, esc, messages, at, f"ladder:{timer.key}")


def stops(fx: Effects, esc: EscalationRow, unless: Sequence[str]) -> bool:
    """Whether a ladder step's ``unless`` has happened (resolution always stops a ladder)."""
    state = State(esc.state)
    if is_done(state):
        return True
    if "acknowledged" in unless and esc.acknowledged_at is not None:
        return True
    if "responded" in unless:
        if esc.acknowledged_at is not None or state is not State.open:
            return True
        return any(e.kind in RESPONSES and e.actor != SYSTEM for e in fx.timeline(esc))
    return False


def _customer_silenced(policy: Policy, esc: EscalationRow) -> str | None:
    handling = set(Snapshot.of(esc.snapshot).decision.handling)
    for rule in policy.handling:
        if rule.id in handling and rule.kind in CUSTOMER_SILENCE:
            return rule.id
    return None


def _remind(
    fx: Effects,
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
        fx.log(
            esc,
            EventKind.reminder_held,
            SYSTEM,
            at,
            {**data, "rule": silenced, **_late(timer)},
            f"handling rule '{silenced}': no communication with the customer",
        )
    else:
        fx.log(esc, EventKind.reminder_due, SYSTEM, at, {**data, **_late(timer)})


def followup(
    fx: Effects, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
) -> None:
    if is_done(esc.state):
        return
    index, n = timer.payload["index"], timer.payload["n"]
    snap = Snapshot.of(esc.snapshot)
    f = snap.followups[index]
    generation = timer.payload.get("generation", 0)
    if f.if_idle:
        last = last_human_action(fx, esc)
        if last is not None and last + f.every > at:
            # someone acted since: the quiet period counts again from their action
            fx.schedule(esc, [followup_timer(snap, esc.id, index, last, n + 1, generation)], at)
            return
    targets = resolve(
        policy,
        f.to,
        team=esc.team,
        customer_email=esc.customer.get("email"),
        at=at,
        overrides=fx.overrides,
    )
    data = {"what": f.what, "to": ", ".join(t for t, _ in targets) or f.to.label()}
    about_customer = f.audience == Audience.customer.value
    _remind(fx, policy, esc, timer, at, data, about_customer)
    fx.schedule(esc, [followup_timer(snap, esc.id, index, at, n + 1, generation)], at)


def update_due(
    fx: Effects, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
) -> None:
    if is_done(esc.state):
        return
    audience = timer.payload["audience"]
    data = {"what": f"{audience} update", "to": esc.owner or f"team:{esc.team}"}
    public = audience in ("customer", "external", Audience.status_page.value)
    _remind(fx, policy, esc, timer, at, data, public)
    page = policy.status_page
    if audience == Audience.status_page.value and page is not None:
        # the status page itself is updated at its cadence, not only the owner reminded
        update = Message(
            page.channel.value,
            page.address,
            Audience.status_page.value,
            page.template,
            via="status page",
            data={"update": timer.payload["n"]},
        )
        fx.send(policy, esc, [update], at, f"update:{timer.key}")
    generation = timer.payload.get("generation", 0)
    snap = Snapshot.of(esc.snapshot)
    nxt = update_timers(snap, esc.id, at, timer.payload["n"] + 1, generation, audience)
    fx.schedule(esc, nxt, at)


HANDLERS: dict[str, Handler] = {
    TimerKind.sla_warning: sla_warning,
    TimerKind.sla_breach: sla_breach,
    TimerKind.ladder_step: ladder_step,
    TimerKind.followup: followup,
    TimerKind.update_due: update_due,
    TimerKind.level_clock: level_clock,
}
"""Handlers of the escalation timers (the on-call hand-off has no escalation: ``fire``)."""
