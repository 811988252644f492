"""The ``act`` use case: a person (or the system) acts on an escalation — acknowledge,
investigate, escalate, de-escalate, reassign, wait on / hear from the customer, comment,
resolve, reopen, close, re-categorise. Refused with the reason when the lifecycle or the policy does
not allow it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from escalade.durations import format_duration
from escalade.escalation import ladder as rungs
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.lifecycle import (
    Action,
    EscalateCause,
    State,
    TransitionError,
    is_done,
    next_state,
)
from escalade.escalation.messages import resolved_messages
from escalade.escalation.snapshot import (
    Snapshot,
    followup_timers,
    ladder_timers,
    sla_timers,
)
from escalade.policy.authority import person_may
from escalade.policy.models import Policy
from escalade.service import monitoring
from escalade.service.delivery import resolve_pages, tell_who_took_it
from escalade.service.effects import Effects
from escalade.service.errors import ActionRefused, NotFound
from escalade.service.moves import arm_level, escalate, tell_new_owner
from escalade.service.policies import PolicyBook
from escalade.store.rows import EscalationRow


@dataclass(frozen=True)
class Acting:
    """One action on one escalation, as each action's handler receives it."""

    fx: Effects
    policy: Policy
    esc: EscalationRow
    state: State  # the state after the action
    by: str
    reason: str | None
    to: str | None
    text: str | None
    now: datetime
    category: str | None = None


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


_CAUSES = {
    "customer_request": EscalateCause.customer_request,
    "supervisor_request": EscalateCause.supervisor_request,
}


@dataclass
class Act:
    book: PolicyBook

    def __call__(
        self,
        fx: Effects,
        ref: str,
        action: Action | str,
        *,
        by: str,
        now: datetime,
        reason: str | None = None,
        to: str | None = None,
        text: str | None = None,
        category: str | None = None,
    ) -> EscalationRow:
        """Act on the escalation ``ref`` in ``fx``'s unit of work (the caller commits)."""
        action = Action(action)
        w = fx.uow
        esc = w.escalations.get_by_ref(ref)
        if esc is None:
            raise NotFound(f"no escalation '{ref}'")
        esc = w.escalations.lock(esc.id) or esc
        try:
            new_state = next_state(State(esc.state), action)
        except TransitionError as exc:
            raise ActionRefused(str(exc)) from None
        policy = self.book.pinned(w, esc.policy_version_id)
        handler = _HANDLERS[action]
        return handler(Acting(fx, policy, esc, new_state, by, reason, to, text, now, category))


def acknowledge(a: Acting) -> EscalationRow:
    esc = a.fx.update(a.esc, a.now, state=a.state.value, acknowledged_at=a.now, owner=a.by)
    a.fx.log(esc, EventKind.escalation_acknowledged, a.by, a.now, {"by": a.by})
    # everyone paged hears who took it; pages still queued are cancelled at the outbox
    tell_who_took_it(a.fx.uow, esc, a.by, a.now)
    return esc


def investigate(a: Acting) -> EscalationRow:
    changes: dict[str, Any] = {"state": a.state.value}
    if a.esc.acknowledged_at is None:
        changes["acknowledged_at"] = a.now
    esc = a.fx.update(a.esc, a.now, **changes)
    a.fx.log(esc, EventKind.escalation_investigating, a.by, a.now, {"by": a.by})
    return esc


def escalate_action(a: Acting) -> EscalationRow:
    cause = _CAUSES.get(a.reason or "", EscalateCause.manual)
    return escalate(
        a.fx, a.policy, a.esc, cause=cause, by=a.by, reason=a.reason, now=a.now, to=a.to
    )


def deescalate(a: Acting) -> EscalationRow:
    esc = a.esc
    try:
        rung = rungs.next_down(
            a.policy,
            esc.category,
            Snapshot.of(esc.snapshot).decision.team,
            esc.team,
            esc.level,
            esc.owner,
            a.to,
        )
    except (rungs.LadderBottom, ValueError) as exc:
        raise ActionRefused(str(exc)) from None
    from_level = esc.level
    esc = a.fx.update(esc, a.now, team=rung.team, level=rung.level, owner=rung.owner)
    a.fx.log(
        esc,
        EventKind.escalation_deescalated,
        a.by,
        a.now,
        {
            "from_level": from_level,
            "to_level": rung.level,
            "team": rung.team,
            "reason": a.reason or "",
            "by": a.by,
        },
        a.reason,
    )
    return esc


def reassign(a: Acting) -> EscalationRow:
    esc, policy, to = a.esc, a.policy, a.to
    if not to:
        raise ActionRefused("reassign needs 'to': a team or a person")
    teams = {t.id for t in policy.teams}
    people = {p.id for p in policy.people}
    if to in teams:
        # the team's own level comes with it (a hand-off across tiers moves the level)
        level = policy.get_team(to).level or esc.level
        moved = a.fx.update(esc, a.now, team=to, owner=None, level=level)
        data = {"from": esc.team, "to": to, "by": a.by, "handoff": True}
        if level != esc.level:
            data.update(from_level=esc.level, to_level=level)
    elif to in people or not people:
        moved = a.fx.update(esc, a.now, owner=to)
        data = {"from": esc.owner or esc.team, "to": to, "by": a.by, "handoff": True}
    else:
        raise ActionRefused(f"'{to}' is neither a team nor a person of the policy")
    a.fx.log(moved, EventKind.escalation_reassigned, a.by, a.now, data, a.reason)
    if moved.team != esc.team or moved.level != esc.level:
        # the new team must answer
        arm_level(a.fx, policy, moved, a.now, response=True, new_level=moved.level != esc.level)
    if (moved.team, moved.owner) != (esc.team, esc.owner) and not is_done(moved.state):
        tell_new_owner(a.fx, policy, moved, a.now, "reassigned")
    return moved


def _owning_team(policy: Policy, category_id: str | None) -> str | None:
    """The team a category gives an escalation: its owner, else its level's team."""
    if not category_id or category_id not in {c.id for c in policy.categories}:
        return None
    cat = policy.get_category(category_id)
    if cat.owner:
        return cat.owner
    return policy.get_level(cat.level).team if cat.level else None


def recategorise(a: Acting) -> EscalationRow:
    """A person corrects the category (docs/engine.md "Re-categorising"): the category
    changes; the owning team follows it while the escalation is still with the old
    category's team and nobody has reassigned it; the priority rises to the new category's
    default when that is more urgent, or becomes it where there was none (never lowered).
    Clocks and the ladder stay as armed."""
    esc, policy, new = a.esc, a.policy, a.category
    if not new:
        raise ActionRefused("recategorise needs 'category': a category of the policy")
    known = [c.id for c in policy.categories]
    if new not in known:
        raise ActionRefused(
            f"'{new}' is not a category of policy '{policy.id}' ({', '.join(known) or 'none'})"
        )
    if new == esc.category:
        raise ActionRefused(f"it is already in category '{new}'")
    cat = policy.get_category(new)
    changes: dict[str, Any] = {"category": new}
    data: dict[str, Any] = {"from": esc.category, "to": new, "by": a.by}
    if not is_done(esc.state):
        reassigned = any(
            e.kind == EventKind.escalation_reassigned
            and e.data.get("from") != e.data.get("to")
            and e.data.get("to") in {t.id for t in policy.teams}
            for e in a.fx.timeline(esc)
        )
        old_team = _owning_team(policy, esc.category)
        new_team = _owning_team(policy, new)
        if (
            new_team
            and new_team != esc.team
            and not reassigned
            and (esc.team == old_team or old_team is None)
        ):
            level = policy.get_team(new_team).level or esc.level
            changes.update(team=new_team, owner=None, level=level)
            data.update(from_team=esc.team, to_team=new_team)
            if level != esc.level:
                data.update(from_level=esc.level, to_level=level)
        if cat.priority and (
            esc.priority is None or policy.more_urgent(cat.priority, esc.priority)
        ):
            changes["priority"] = cat.priority
            data.update(from_priority=esc.priority, to_priority=cat.priority)
    moved = a.fx.update(esc, a.now, **changes)
    a.fx.log(moved, EventKind.escalation_recategorised, a.by, a.now, data, a.reason)
    if moved.team != esc.team:
        tell_new_owner(a.fx, policy, moved, a.now, "recategorised")
    return moved


def waiting_on_customer(a: Acting) -> EscalationRow:
    esc = a.esc
    if not a.policy.sla.pause_when_waiting_on_customer:
        a.fx.log(
            esc,
            EventKind.escalation_waiting_on_customer,
            a.by,
            a.now,
            {"by": a.by, "paused": False},
            a.reason,
        )
        return esc
    if a.fx.paused_since(esc) is not None:
        raise ActionRefused("already waiting on the customer")
    a.fx.log(
        esc,
        EventKind.sla_paused,
        a.by,
        a.now,
        {"clock": "resolution", "by": a.by},
        a.reason or "waiting on the customer",
    )
    return esc


def customer_reply(a: Acting) -> EscalationRow:
    esc = a.esc
    was_waiting = monitoring.waiting_on_customer(a.fx, esc)
    earlier = monitoring.earlier_words(a.fx, esc)
    a.fx.log(esc, EventKind.customer_replied, a.by, a.now, {"text": a.text or ""})
    paused = a.fx.paused_since(esc)
    if paused is not None and not is_done(esc.state):
        resume(a.fx, esc, paused, a.now)
    # seed 001 monitoring: a reply while we waited, a reply whose mood dropped
    return monitoring.on_customer_reply(
        a.fx, a.policy, esc, a.text or "", a.now, was_waiting=was_waiting, earlier=earlier
    )


def resume(fx: Effects, esc: EscalationRow, paused: datetime, now: datetime) -> None:
    """Re-arm the resolution clock: paused time does not count."""
    snap = Snapshot.of(esc.snapshot)
    calendar = snap.calendar
    spans: list[tuple[datetime, datetime]] = []
    start = esc.created_at
    resumes = 0
    for e in fx.timeline(esc):
        if e.kind == EventKind.sla_paused:
            spans.append((start, e.at))
        elif e.kind == EventKind.sla_resumed:
            start = e.at
            resumes += 1
    used = sum((calendar.elapsed(a, b) for a, b in spans), timedelta(0))
    generation = resumes + 1
    fx.log(
        esc,
        EventKind.sla_resumed,
        SYSTEM,
        now,
        {"clock": "resolution", "paused_for": format_duration(now - paused)},
    )
    if snap.target("resolution") is None:
        return
    for t in fx.uow.timers.find(escalation_id=esc.id, states=["pending"]):
        if t.kind.startswith("sla.") and t.payload.get("clock") == "resolution":
            fx.uow.timers.cancel(t.key)
    resolution_only = snap.only_target("resolution")
    fx.schedule(esc, sla_timers(resolution_only, esc.id, now, generation + 100, used=used), now)


def comment(a: Acting) -> EscalationRow:
    a.fx.log(
        a.esc,
        EventKind.escalation_comment,
        a.by,
        a.now,
        {"by": a.by, "text": a.text or a.reason or ""},
    )
    return a.esc


def _resolve_authority(a: Acting) -> None:
    """Resolving an escalation whose category decides an amount by the authority matrix
    (``authority:``, e.g. refunds, financial disputes) needs that authority for the
    escalation's amount: refused (naming the band) otherwise; allowed, it is recorded."""
    cat = a.policy.find_category(a.esc.category) if a.esc.category else None
    amount = a.esc.package.get("amount")
    if cat is None or not cat.authority or not isinstance(amount, int | float):
        return
    verdict = person_may(a.policy, a.by, cat.authority, amount=float(amount))
    if not verdict.allowed:
        raise ActionRefused(
            f"resolving {a.esc.ref} decides {amount:g} under authority.{cat.authority}: "
            f"{verdict.reason}"
        )
    a.fx.log(
        a.esc,
        EventKind.authority_allowed,
        a.by,
        a.now,
        {"action": cat.authority, "amount": amount, "on": "resolve"},
        verdict.reason,
    )


def resolve(a: Acting) -> EscalationRow:
    _resolve_authority(a)
    esc = a.fx.update(a.esc, a.now, state=a.state.value, resolved_at=a.now)
    a.fx.uow.timers.cancel_for_escalation(esc.id)
    resolve_pages(a.fx.uow, esc, a.by, a.now)  # the incident closes on the pager too
    a.fx.log(
        esc,
        EventKind.escalation_resolved,
        a.by,
        a.now,
        {"by": a.by, "resolution": a.reason or a.text or ""},
    )
    # the notification rules sent at resolution (seed 002's post-resolution summary)
    summary = resolved_messages(a.policy, esc, a.now, a.fx.overrides)
    if summary:
        a.fx.send(
            a.policy, esc, summary, a.now, f"resolved:{esc.version}", resolution=a.reason or a.text
        )
    pm = Snapshot.of(esc.snapshot).postmortem
    if pm and pm.required:
        due = a.now + pm.due if pm.due else None
        a.fx.log(
            esc,
            EventKind.postmortem_required,
            SYSTEM,
            a.now,
            {"due": _iso(due) if due else None, "priority": esc.priority},
        )
    return esc


def reopen(a: Acting) -> EscalationRow:
    fx, now = a.fx, a.now
    esc = fx.update(
        a.esc, now, state=a.state.value, resolved_at=None, closed_at=None, acknowledged_at=None
    )
    fx.log(esc, EventKind.escalation_reopened, a.by, now, {"by": a.by}, a.reason)
    generation = 1 + sum(1 for e in fx.timeline(esc) if e.kind == EventKind.escalation_reopened)
    snap = Snapshot.of(esc.snapshot)
    timers = [
        *sla_timers(snap, esc.id, now, generation),
        *ladder_timers(snap, esc.id, now, generation),
    ]
    fx.schedule(esc, timers, now)
    fx.schedule(esc, followup_timers(snap, esc.id, now, generation), now)
    arm_level(fx, a.policy, esc, now, response=False)
    return esc


def close(a: Acting) -> EscalationRow:
    esc = a.fx.update(a.esc, a.now, state=a.state.value, closed_at=a.now)
    a.fx.log(esc, EventKind.escalation_closed, a.by, a.now, {"by": a.by}, a.reason)
    return esc


_HANDLERS: dict[Action, Callable[[Acting], EscalationRow]] = {
    Action.acknowledge: acknowledge,
    Action.investigate: investigate,
    Action.escalate: escalate_action,
    Action.deescalate: deescalate,
    Action.reassign: reassign,
    Action.waiting_on_customer: waiting_on_customer,
    Action.customer_reply: customer_reply,
    Action.comment: comment,
    Action.resolve: resolve,
    Action.reopen: reopen,
    Action.close: close,
    Action.recategorise: recategorise,
}
