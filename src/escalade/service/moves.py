"""Moving an escalation: up its ladder or path, to a level's clocks, to a higher priority,
and the outcome of a trigger. Shared by the use cases that move escalations (a person's
``escalate``, a breach, a ladder step, a trigger)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from escalade.escalation import ladder as rungs
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.lifecycle import EscalateCause
from escalade.escalation.messages import (
    manager_messages,
    priority_style,
    recipient_messages,
    role_messages,
    team_messages,
)
from escalade.escalation.notify import Message
from escalade.escalation.snapshot import Snapshot, business_calendar, level_timers
from escalade.escalation.triggers import holds_in_flight
from escalade.oncall.schedule import Override
from escalade.policy.models import Audience, Channel, Policy, Recipient, Trigger
from escalade.service.effects import Effects
from escalade.service.errors import ActionRefused
from escalade.sla.clocks import arrival_response, calendar_for
from escalade.store.rows import EscalationRow


def escalate(
    fx: Effects,
    policy: Policy,
    esc: EscalationRow,
    *,
    cause: EscalateCause,
    by: str,
    now: datetime,
    reason: str | None = None,
    to: str | None = None,
    strict: bool = True,
) -> EscalationRow:
    """Move an escalation one rung up its path (or levels), or to a named level/team.
    At the top: refused (``strict``, a person asked) or recorded as ``escalation.at_top``."""
    try:
        if to is not None:
            rung = named_rung(policy, to, esc)
        else:
            rung = rungs.next_up(
                policy,
                esc.category,
                Snapshot.of(esc.snapshot).decision.team,
                esc.team,
                esc.level,
                esc.owner,
            )
    except (rungs.LadderTop, ValueError) as exc:
        if strict:
            raise ActionRefused(str(exc)) from None
        fx.log(
            esc,
            EventKind.escalation_at_top,
            SYSTEM,
            now,
            {"cause": cause.value, "note": str(exc)},
            reason,
        )
        return esc
    from_level = esc.level
    owner = rung.owner if rung.owner else None
    to_level = rung.level
    if policy.is_level(from_level) and not (
        to_level == from_level or policy.raises_level(from_level, to_level)
    ):
        to_level = from_level  # escalating never lowers the level
    from_team = esc.team
    esc = fx.update(esc, now, team=rung.team, level=to_level, owner=owner)
    if to_level != from_level or esc.team != from_team:
        arm_level(fx, policy, esc, now, response=True, new_level=to_level != from_level)
    fx.log(
        esc,
        EventKind.escalation_escalated,
        by,
        now,
        {
            "from_level": from_level,
            "to_level": to_level,
            "team": rung.team,
            "cause": cause.value,
            "via": rung.via,
            **({"owner": owner} if owner else {}),
        },
        reason,
    )
    style = priority_style(policy, esc.priority)
    messages = (
        role_messages(
            policy, rung.role, rung.team, style, now, fx.overrides, data={"cause": cause.value}
        )
        if rung.role
        else []
    )  # a path step naming a role reaches whoever holds it ("T&S Lead", "CEO")
    if rung.role and not messages:
        fx.log(
            esc,
            EventKind.notification_held,
            SYSTEM,
            now,
            {"audience": "internal", "to": f"role:{rung.role}"},
            f"nobody in the policy holds role '{rung.role}' named by {rung.via}: "
            + (f"team '{rung.team}' is told instead" if rung.team else "nobody is told"),
        )
    if rung.team and not messages:
        messages = team_messages(
            policy, rung.team, style, now, fx.overrides, data={"cause": cause.value}
        )
    fx.send(policy, esc, messages, now, f"escalated:{esc.version}")
    return esc


def tell_new_owner(
    fx: Effects, policy: Policy, esc: EscalationRow, now: datetime, cause: str
) -> None:
    """Whoever an escalation was handed to by a person (reassigned to a team or a person,
    or moved to the team of its corrected category) hears of it: a team by the priority's
    style and its own contacts, a person at their own address."""
    if esc.owner:
        messages = [
            Message(
                Channel.email.value,
                esc.owner,
                Audience.internal.value,
                None,
                via=f"assigned to {esc.owner}",
                data={"cause": cause},
            )
        ]
    elif esc.team:
        style = priority_style(policy, esc.priority)
        messages = team_messages(policy, esc.team, style, now, fx.overrides, data={"cause": cause})
    else:
        return
    fx.send(policy, esc, messages, now, f"{cause}:{esc.version}")


def level_team_messages(
    policy: Policy,
    esc: EscalationRow,
    level: str,
    already: Sequence[Recipient],
    now: datetime,
    overrides: Mapping[str, Sequence[Override]] | None,
) -> list[Message]:
    """The level's people, told that a ladder step raised an escalation to their level:
    the level's team (by the priority's style), unless it owns the escalation already or
    the step names that team or its on-call schedule itself."""
    level_team = policy.get_level(level).team if policy.is_level(level) else None
    if not level_team or level_team == esc.team:
        return []
    schedule = policy.get_team(level_team).schedule
    if any(r.team == level_team or (schedule and r.schedule == schedule) for r in already):
        return []
    return team_messages(
        policy,
        level_team,
        priority_style(policy, esc.priority),
        now,
        overrides,
        data={"cause": EscalateCause.ladder_step.value, "level": level},
    )


def named_rung(policy: Policy, to: str, esc: EscalationRow) -> rungs.Rung:
    """The rung ``to`` names: a level above the current one, or a team."""
    lv = next((x for x in policy.levels if x.id == to), None)
    if lv is not None:
        if esc.level and policy.level_rank(to) <= policy.level_rank(esc.level):
            raise ActionRefused(f"level '{to}' is not above the current level '{esc.level}'")
        return rungs.Rung(lv.team or esc.team, lv.id, None, f"level {lv.id}")
    t = next((x for x in policy.teams if x.id == to), None)
    if t is not None:
        return rungs.Rung(t.id, t.level or esc.level, None, f"team {t.id}")
    raise ActionRefused(f"'{to}' is neither a level nor a team of the policy")


def arm_level(
    fx: Effects,
    policy: Policy,
    esc: EscalationRow,
    now: datetime,
    *,
    response: bool,
    new_level: bool = True,
) -> None:
    """Start the clocks of the team and level the escalation is at now: its response target
    (``response``: the escalation has just reached them, so they must answer in time;
    ``new_level``: the level is new too, not only the team; see
    ``sla.clocks.arrival_response``) and the level's time box. Business time on the
    level's calendar (a (team, priority) row's: the priority's, else the team's)."""
    level = next((lv for lv in policy.levels if lv.id == esc.level), None)
    found = (
        arrival_response(policy, esc.team, esc.level, esc.priority, level_reached=new_level)
        if response
        else None
    )
    answer, responder = found if found is not None else (None, None)
    if level is None and answer is None:
        return
    snap = Snapshot.of(esc.snapshot)
    calendar = (
        business_calendar(policy.get_calendar(level.calendar))
        if level is not None and level.calendar
        else snap.calendar
    )
    if responder is not None:
        # a (team, priority) row: the priority's calendar, else the team's (an emergency
        # response at a business-hours tier runs around the clock)
        answer_calendar = business_calendar(calendar_for(policy, esc.team, esc.priority))
    else:
        answer_calendar = calendar
    timers = level_timers(
        level,
        calendar,
        esc.id,
        now,
        esc.version,
        snap.warn_at,
        response=answer,
        team=esc.team if responder is not None else None,
        responder=responder,
        response_calendar=answer_calendar,
    )
    fx.schedule(esc, timers, now)


def raise_priority(
    fx: Effects, policy: Policy, esc: EscalationRow, now: datetime, why: str
) -> EscalationRow:
    """One priority more urgent (``raise_priority`` on breach); nothing at the top."""
    new = policy.priority_above(esc.priority)
    if new is None:
        return esc
    old = esc.priority
    esc = fx.update(esc, now, priority=new)
    fx.log(esc, EventKind.escalation_priority_raised, SYSTEM, now, {"from": old, "to": new}, why)
    return esc


def apply_trigger(
    fx: Effects,
    policy: Policy,
    esc: EscalationRow,
    trig: Trigger,
    at: datetime,
    why: str,
    *,
    record: bool = True,
    cap: str | None = None,
) -> EscalationRow:
    """A trigger that fires on an escalation in flight: record it (unless the caller did),
    then raise its level (never above ``cap``, a breach's ceiling) or priority and inform
    whom it names."""
    trigger_id, kind, then = trig.id, trig.kind, trig.then
    if record:
        fx.log(
            esc,
            EventKind.trigger_fired,
            SYSTEM,
            at,
            {"trigger": trigger_id, "refs": [esc.ref]},
            why,
        )
    if then.team and then.team != esc.team:
        # the trigger names the team that takes it over (one team at a time)
        team_level = policy.get_team(then.team).level or esc.level
        previous, previous_level = esc.team, esc.level
        esc = fx.update(esc, at, team=then.team, owner=None, level=team_level)
        fx.log(
            esc,
            EventKind.escalation_reassigned,
            SYSTEM,
            at,
            {"from": previous, "to": then.team, "by": SYSTEM, "handoff": True},
            f"{kind.value} trigger '{trigger_id}'",
        )
        # the team it reached must answer
        arm_level(fx, policy, esc, at, response=True, new_level=esc.level != previous_level)
    target = then.level or then.min_level
    if target and cap is not None and policy.raises_level(cap, target):
        target = cap  # a breach moves it no higher than its category's ceiling
    if target and policy.raises_level(esc.level, target):
        esc = escalate(
            fx,
            policy,
            esc,
            cause=EscalateCause.trigger,
            by=SYSTEM,
            now=at,
            to=target,
            reason=f"{kind.value} trigger '{trigger_id}': {why}",
            strict=False,
        )
    wanted = then.priority or then.min_priority
    if policy.more_urgent(wanted, esc.priority):
        old = esc.priority
        esc = fx.update(esc, at, priority=wanted)
        fx.log(
            esc,
            EventKind.escalation_priority_raised,
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
                    overrides=fx.overrides,
                )
            )
        fx.send(policy, esc, messages, at, f"trigger:{trigger_id}")
    return esc


def on_breach(
    fx: Effects,
    policy: Policy,
    esc: EscalationRow,
    clock: str,
    why: str,
    at: datetime,
) -> EscalationRow:
    """The policy's breach actions (``sla.on_breach``), then triggers ``on: sla_breach``."""
    breached_by = esc.team  # whose clock it was, before an escalation hands it on
    cap = breach_cap(policy, esc)
    for action in Snapshot.of(esc.snapshot).on_breach:
        if action == "escalate" and cap is not None and not policy.raises_level(esc.level, cap):
            # at the category's ceiling for automatic escalation: alert, do not climb
            management_alert(fx, policy, esc, clock, why, at, cap)
        elif action == "escalate":
            cause = (
                EscalateCause.no_ack
                if clock in ("response", "acknowledgement")
                else EscalateCause.sla_breach
            )
            esc = escalate(
                fx, policy, esc, cause=cause, by=SYSTEM, now=at, reason=why, strict=False
            )
        elif action == "notify_manager":
            messages = manager_messages(policy, breached_by, why)
            if not messages:
                fx.log(
                    esc,
                    EventKind.notification_held,
                    SYSTEM,
                    at,
                    {"audience": "internal", "to": f"manager of {breached_by}"},
                    f"team '{breached_by}' has no manager or lead in the policy",
                )
            fx.send(policy, esc, messages, at, f"breach:{clock}:{esc.version}:manager")
        elif action == "raise_priority":
            esc = raise_priority(fx, policy, esc, at, why)
    for trig in policy.triggers:
        if trig.on == "sla_breach" and holds_in_flight(trig.when, esc):
            esc = apply_trigger(fx, policy, esc, trig, at, why, cap=cap)
    return esc


def breach_cap(policy: Policy, esc: EscalationRow) -> str | None:
    """The highest level a breach may move this escalation to by itself (its category's
    ``auto_escalate_up_to``), or None for no ceiling."""
    if not esc.category or not policy.is_level(esc.level):
        return None
    cat = next((c for c in policy.categories if c.id == esc.category), None)
    return cat.auto_escalate_up_to if cat is not None else None


def management_alert(
    fx: Effects,
    policy: Policy,
    esc: EscalationRow,
    clock: str,
    why: str,
    at: datetime,
    cap: str,
) -> None:
    """A breach at the category's ceiling: the team's manager (else its leads) is alerted
    and the escalation stays where it is (``escalation.at_top`` says why)."""
    note = (
        f"category '{esc.category}' escalates by itself only up to {cap}: "
        f"the manager (else the lead) of team {esc.team} is alerted instead"
    )
    fx.log(esc, EventKind.escalation_at_top, SYSTEM, at, {"cause": "sla_breach", "note": note}, why)
    messages = manager_messages(policy, esc.team, why)
    if not messages:
        fx.log(
            esc,
            EventKind.notification_held,
            SYSTEM,
            at,
            {"audience": "internal", "to": f"manager of {esc.team}"},
            f"team '{esc.team}' has no manager or lead in the policy",
        )
    fx.send(policy, esc, messages, at, f"breach:{clock}:{esc.version}:ceiling")
