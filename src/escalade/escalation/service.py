"""The escalation service: every use case runs here, in one unit of work.

``create``, ``act`` (acknowledge, escalate, resolve, …), ``alert``, ``record_activity`` and
the timer handlers change escalations, append to their timeline, queue messages in the
outbox and schedule timers, all in the same transaction. The API, the CLI, the engine and
``simulate`` call these functions; none of them can skip validation or the timeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from escalade.clock import Clock
from escalade.durations import format_duration
from escalade.escalation import ladder as rungs
from escalade.escalation.handlers import handle_timer
from escalade.escalation.handoffs import schedule_handoffs
from escalade.escalation.incidents import related_threshold
from escalade.escalation.lifecycle import (
    Action,
    EscalateCause,
    State,
    TransitionError,
    next_state,
)
from escalade.escalation.messages import (
    created_messages,
    priority_style,
    team_messages,
    template_context,
)
from escalade.escalation.notify import Message, apply_handling, render
from escalade.escalation.snapshot import (
    PlannedTimer,
    business_calendar,
    followup_timer,
    ladder_timers,
    level_timers,
    sla_timers,
    snapshot_calendar,
    update_timers,
)
from escalade.escalation.snapshot import build_snapshot as _snapshot
from escalade.oncall.schedule import Override
from escalade.policy.models import (
    Policy,
)
from escalade.routing.models import Decision, EscalationInput
from escalade.routing.router import Router
from escalade.store import Store, UnitOfWork
from escalade.store.rows import EscalationRow, TimerRow

SYSTEM = "escalade"
_OWN_REF = re.compile(r"ESC-\d+")


class NotFound(LookupError):
    pass


class ActionRefused(ValueError):
    """An action refused with the reason (invalid transition, bad target …)."""


@dataclass(frozen=True)
class _Act:
    """One action on one escalation, as the ``_on_<action>`` methods receive it."""

    w: UnitOfWork
    policy: Policy
    esc: EscalationRow
    state: State  # the state after the action
    by: str
    reason: str | None
    to: str | None
    text: str | None
    now: datetime


@dataclass
class ActivePolicy:
    version_id: int
    policy: Policy
    router: Router


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class EscalationService:
    store: Store
    clock: Clock
    active: ActivePolicy | None = None
    overrides: dict[str, list[Override]] = field(default_factory=dict)
    _pinned: dict[int, Policy] = field(default_factory=dict)

    # ------------------------------------------------------------------ policy versions

    def apply_policy(
        self, policy: Policy, *, router: Router | None = None, by: str = SYSTEM
    ) -> int:
        """Store a policy version (deduplicated by content hash) and make it active."""
        content = policy.model_dump_json(by_alias=True)
        now = self.clock.now()
        with self.store.unit_of_work() as uow:
            row = uow.policies.add(name=policy.id, content=content, applied_by=by, at=now)
            schedule_handoffs(uow, row.id, policy, now)
            uow.commit()
        self._pinned[row.id] = policy
        self.active = ActivePolicy(row.id, policy, router or Router(policy))
        return row.id

    def pinned(self, uow: UnitOfWork, version_id: int) -> Policy:
        """The policy version an escalation started with."""
        if version_id not in self._pinned:
            row = uow.policies.get(version_id)
            if row is None:
                raise NotFound(f"policy version {version_id} is missing")
            self._pinned[version_id] = Policy.model_validate_json(row.content)
        return self._pinned[version_id]

    def _require_active(self) -> ActivePolicy:
        if self.active is None:
            raise ActionRefused("no policy applied yet")
        return self.active

    @contextmanager
    def _uow(self, uow: UnitOfWork | None) -> Iterator[UnitOfWork]:
        if uow is not None:
            yield uow
            return
        with self.store.unit_of_work() as fresh:
            yield fresh
            fresh.commit()

    # ------------------------------------------------------------------ create

    def create(
        self,
        inp: EscalationInput,
        *,
        by: str = "api",
        ref: str | None = None,
        parent_id: int | None = None,
        cause: str | None = None,
        extra_reasons: Sequence[str] = (),
        uow: UnitOfWork | None = None,
    ) -> EscalationRow:
        """Route, store, notify and start the clocks of a new escalation."""
        active = self._require_active()
        now = self.clock.now()
        decision = active.router.route(inp, now)
        with self._uow(uow) as w:
            if ref is not None and _OWN_REF.fullmatch(ref):
                raise ActionRefused(
                    f"'{ref}': names of the form ESC-<number> are given by Escalade; "
                    "choose another ref, or leave it out"
                )
            if ref is not None and w.escalations.get_by_ref(ref) is not None:
                raise ActionRefused(f"an escalation named '{ref}' already exists")
            snapshot = _snapshot(active.policy, decision, inp.channel, now)
            esc = w.escalations.add(
                policy_version_id=active.version_id,
                snapshot=snapshot,
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
            reasons = [*extra_reasons, *decision.reasons]
            self._log(
                w,
                esc,
                "escalation.created",
                by,
                now,
                {
                    "team": decision.team,
                    "level": decision.level,
                    "priority": decision.priority,
                    "category": decision.category,
                    "reasons": reasons,
                    "handling": decision.handling,
                    "missing": decision.missing,
                    "needs_triage": decision.needs_triage,
                    **({"also": decision.also} if decision.also else {}),
                    **({"cause": cause} if cause else {}),
                    "policy_version": active.version_id,
                },
            )
            for trig in decision.triggers:
                self._log(
                    w, esc, "trigger.fired", SYSTEM, now, {"trigger": trig, "refs": [esc.ref]}
                )
            self._notify_created(w, active.policy, esc, decision, now)
            self._schedule(
                w,
                [*sla_timers(snapshot, esc.id, now), *ladder_timers(snapshot, esc.id, now)],
                esc,
                now,
            )
            self._schedule_followups(w, esc, now)
            self.arm_level(w, active.policy, esc, now, response=False)  # its time box
            related_threshold(self, w, active.policy, esc, now)
            return esc

    # ------------------------------------------------------------------ act

    def act(
        self,
        ref: str,
        action: Action | str,
        *,
        by: str,
        reason: str | None = None,
        to: str | None = None,
        text: str | None = None,
        uow: UnitOfWork | None = None,
    ) -> EscalationRow:
        """A person (or the system) acts on an escalation; refused with a reason if invalid."""
        action = Action(action)
        now = self.clock.now()
        with self._uow(uow) as w:
            esc = w.escalations.get_by_ref(ref)
            if esc is None:
                raise NotFound(f"no escalation '{ref}'")
            esc = w.escalations.lock(esc.id) or esc
            try:
                new_state = next_state(State(esc.state), action)
            except TransitionError as exc:
                raise ActionRefused(str(exc)) from None
            policy = self.pinned(w, esc.policy_version_id)
            handler: Callable[[_Act], EscalationRow] = getattr(self, f"_on_{action.value}")
            return handler(_Act(w, policy, esc, new_state, by, reason, to, text, now))

    def _update(
        self, w: UnitOfWork, esc: EscalationRow, now: datetime, **changes: Any
    ) -> EscalationRow:
        return w.escalations.update(esc.id, expected_version=esc.version, at=now, **changes)

    def _on_acknowledge(self, a: _Act) -> EscalationRow:
        w, esc, state, by, now = a.w, a.esc, a.state, a.by, a.now
        esc = self._update(w, esc, now, state=state.value, acknowledged_at=now, owner=by)
        self._log(w, esc, "escalation.acknowledged", by, now, {"by": by})
        return esc

    def _on_investigate(self, a: _Act) -> EscalationRow:
        w, esc, state, by, now = a.w, a.esc, a.state, a.by, a.now
        changes: dict[str, Any] = {"state": state.value}
        if esc.acknowledged_at is None:
            changes["acknowledged_at"] = now
        esc = self._update(w, esc, now, **changes)
        self._log(w, esc, "escalation.investigating", by, now, {"by": by})
        return esc

    def _on_escalate(self, a: _Act) -> EscalationRow:
        w, policy, esc, by, reason, to, now = a.w, a.policy, a.esc, a.by, a.reason, a.to, a.now
        cause = (
            EscalateCause.customer_request
            if reason == "customer_request"
            else (
                EscalateCause.supervisor_request
                if reason == "supervisor_request"
                else EscalateCause.manual
            )
        )
        return self.escalate(w, policy, esc, cause=cause, by=by, reason=reason, now=now, to=to)

    def escalate(
        self,
        w: UnitOfWork,
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
        """Move an escalation one rung up its path (or levels), or to a named level/team."""
        decision = esc.snapshot["decision"]
        try:
            if to is not None:
                rung = self._named_rung(policy, to, esc)
            else:
                rung = rungs.next_up(
                    policy, esc.category, decision["team"], esc.team, esc.level, esc.owner
                )
        except (rungs.LadderTop, ValueError) as exc:
            if strict:
                raise ActionRefused(str(exc)) from None
            self._log(
                w,
                esc,
                "escalation.at_top",
                SYSTEM,
                now,
                {"cause": cause.value, "note": str(exc)},
                reason,
            )
            return esc
        from_level = esc.level
        owner = rung.owner if rung.owner else None
        levels = [lv.id for lv in policy.levels]
        to_level = rung.level
        if from_level in levels and (
            to_level not in levels or levels.index(to_level or "") < levels.index(from_level)
        ):
            to_level = from_level  # escalating never lowers the level
        esc = self._update(w, esc, now, team=rung.team, level=to_level, owner=owner)
        if to_level != from_level:
            self.arm_level(w, policy, esc, now, response=True)
        self._log(
            w,
            esc,
            "escalation.escalated",
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
        if rung.team:
            messages = team_messages(
                policy,
                rung.team,
                priority_style(policy, esc.priority),
                now,
                self.overrides,
                data={"cause": cause.value},
            )
            self._send(w, policy, esc, messages, now, f"escalated:{esc.version}")
        return esc

    def arm_level(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, now: datetime, *, response: bool
    ) -> None:
        """Start the clocks of the level the escalation is at now: its response target
        (``response``: after an escalation the new level must answer in time) and its time
        box. Business time on the level's calendar, else the escalation's."""
        level = next((lv for lv in policy.levels if lv.id == esc.level), None)
        if level is None:
            return
        calendar = (
            business_calendar(policy.get_calendar(level.calendar))
            if level.calendar
            else snapshot_calendar(esc.snapshot)
        )
        warn = float(esc.snapshot.get("warn_at", 0.8))
        timers = level_timers(level, calendar, esc.id, now, esc.version, warn, response=response)
        self._schedule(w, timers, esc, now)

    def _named_rung(self, policy: Policy, to: str, esc: EscalationRow) -> rungs.Rung:
        lv = next((x for x in policy.levels if x.id == to), None)
        if lv is not None:
            if esc.level and policy.level_rank(to) <= policy.level_rank(esc.level):
                raise ActionRefused(f"level '{to}' is not above the current level '{esc.level}'")
            return rungs.Rung(lv.team or esc.team, lv.id, None, f"level {lv.id}")
        t = next((x for x in policy.teams if x.id == to), None)
        if t is not None:
            return rungs.Rung(t.id, t.level or esc.level, None, f"team {t.id}")
        raise ActionRefused(f"'{to}' is neither a level nor a team of the policy")

    def _on_deescalate(self, a: _Act) -> EscalationRow:
        w, policy, esc, by, reason, to, now = a.w, a.policy, a.esc, a.by, a.reason, a.to, a.now
        try:
            rung = rungs.next_down(
                policy,
                esc.category,
                esc.snapshot["decision"]["team"],
                esc.team,
                esc.level,
                esc.owner,
                to,
            )
        except (rungs.LadderBottom, ValueError) as exc:
            raise ActionRefused(str(exc)) from None
        from_level = esc.level
        esc = self._update(w, esc, now, team=rung.team, level=rung.level, owner=rung.owner)
        self._log(
            w,
            esc,
            "escalation.deescalated",
            by,
            now,
            {
                "from_level": from_level,
                "to_level": rung.level,
                "team": rung.team,
                "reason": reason or "",
                "by": by,
            },
            reason,
        )
        return esc

    def _on_reassign(self, a: _Act) -> EscalationRow:
        w, policy, esc, by, reason, to, now = a.w, a.policy, a.esc, a.by, a.reason, a.to, a.now
        if not to:
            raise ActionRefused("reassign needs 'to': a team or a person")
        teams = {t.id for t in policy.teams}
        people = {p.id for p in policy.people}
        if to in teams:
            # the team's own level comes with it (a hand-off across tiers moves the level)
            level = policy.get_team(to).level or esc.level
            esc2 = self._update(w, esc, now, team=to, owner=None, level=level)
            data = {"from": esc.team, "to": to, "by": by, "handoff": True}
            if level != esc.level:
                data.update(from_level=esc.level, to_level=level)
        elif to in people or not people:
            esc2 = self._update(w, esc, now, owner=to)
            data = {"from": esc.owner or esc.team, "to": to, "by": by, "handoff": True}
        else:
            raise ActionRefused(f"'{to}' is neither a team nor a person of the policy")
        self._log(w, esc2, "escalation.reassigned", by, now, data, reason)
        return esc2

    def _on_waiting_on_customer(self, a: _Act) -> EscalationRow:
        w, policy, esc, by, reason, now = a.w, a.policy, a.esc, a.by, a.reason, a.now
        if not policy.sla.pause_when_waiting_on_customer:
            self._log(
                w,
                esc,
                "escalation.waiting_on_customer",
                by,
                now,
                {"by": by, "paused": False},
                reason,
            )
            return esc
        if self._paused_since(w, esc) is not None:
            raise ActionRefused("already waiting on the customer")
        self._log(
            w,
            esc,
            "sla.paused",
            by,
            now,
            {"clock": "resolution", "by": by},
            reason or "waiting on the customer",
        )
        return esc

    def _on_customer_reply(self, a: _Act) -> EscalationRow:
        w, esc, by, text, now = a.w, a.esc, a.by, a.text, a.now
        self._log(w, esc, "customer.replied", by, now, {"text": text or ""})
        paused = self._paused_since(w, esc)
        if paused is not None and State(esc.state) not in (State.resolved, State.closed):
            self._resume(w, esc, paused, now)
        return esc

    def _on_comment(self, a: _Act) -> EscalationRow:
        w, esc, by, text, reason, now = a.w, a.esc, a.by, a.text, a.reason, a.now
        self._log(w, esc, "escalation.comment", by, now, {"by": by, "text": text or reason or ""})
        return esc

    def _on_resolve(self, a: _Act) -> EscalationRow:
        w, esc, state, by, reason, text, now = a.w, a.esc, a.state, a.by, a.reason, a.text, a.now
        esc = self._update(w, esc, now, state=state.value, resolved_at=now)
        w.timers.cancel_for_escalation(esc.id)
        self._log(
            w, esc, "escalation.resolved", by, now, {"by": by, "resolution": reason or text or ""}
        )
        pm = esc.snapshot.get("postmortem")
        if pm and pm.get("required"):
            due = now + timedelta(seconds=pm["due_s"]) if pm.get("due_s") else None
            self._log(
                w,
                esc,
                "postmortem.required",
                SYSTEM,
                now,
                {"due": _iso(due) if due else None, "priority": esc.priority},
            )
        return esc

    def _on_reopen(self, a: _Act) -> EscalationRow:
        w, policy, esc, state, by, reason, now = (
            a.w,
            a.policy,
            a.esc,
            a.state,
            a.by,
            a.reason,
            a.now,
        )
        esc = self._update(
            w, esc, now, state=state.value, resolved_at=None, closed_at=None, acknowledged_at=None
        )
        self._log(w, esc, "escalation.reopened", by, now, {"by": by}, reason)
        generation = 1 + sum(
            1 for e in w.timeline.for_escalation(esc.id) if e.kind == "escalation.reopened"
        )
        timers = [
            *sla_timers(esc.snapshot, esc.id, now, generation),
            *ladder_timers(esc.snapshot, esc.id, now, generation),
        ]
        self._schedule(w, timers, esc, now)
        self._schedule_followups(w, esc, now, generation)
        self.arm_level(w, policy, esc, now, response=False)
        return esc

    def _on_close(self, a: _Act) -> EscalationRow:
        w, esc, state, by, reason, now = a.w, a.esc, a.state, a.by, a.reason, a.now
        esc = self._update(w, esc, now, state=state.value, closed_at=now)
        self._log(w, esc, "escalation.closed", by, now, {"by": by}, reason)
        return esc

    # ------------------------------------------------------------------ pausing

    def _paused_since(self, w: UnitOfWork, esc: EscalationRow) -> datetime | None:
        paused: datetime | None = None
        for e in w.timeline.for_escalation(esc.id):
            if e.kind == "sla.paused":
                paused = e.at
            elif e.kind == "sla.resumed":
                paused = None
        return paused

    def _resume(self, w: UnitOfWork, esc: EscalationRow, paused: datetime, now: datetime) -> None:
        """Re-arm the resolution clock: paused time does not count."""
        calendar = snapshot_calendar(esc.snapshot)
        spans: list[tuple[datetime, datetime]] = []
        start = esc.created_at
        resumes = 0
        for e in w.timeline.for_escalation(esc.id):
            if e.kind == "sla.paused":
                spans.append((start, e.at))
            elif e.kind == "sla.resumed":
                start = e.at
                resumes += 1
        used = sum((calendar.elapsed(a, b) for a, b in spans), timedelta(0))
        generation = resumes + 1
        self._log(
            w,
            esc,
            "sla.resumed",
            SYSTEM,
            now,
            {"clock": "resolution", "paused_for": format_duration(now - paused)},
        )
        target = esc.snapshot["targets"].get("resolution")
        if not target:
            return
        for t in w.timers.find(escalation_id=esc.id, states=["pending"]):
            if t.kind.startswith("sla.") and t.payload.get("clock") == "resolution":
                w.timers.cancel(t.key)
        resolution_only = {**esc.snapshot, "targets": {"resolution": target}}
        self._schedule(
            w, sla_timers(resolution_only, esc.id, now, generation + 100, used=used), esc, now
        )

    # ------------------------------------------------------------------ timers

    def handle_timer(self, uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        """Engine entry point: one due timer of an escalation (see ``handlers``)."""
        handle_timer(self, uow, timer, now)

    # ------------------------------------------------------------------ triggers

    # ------------------------------------------------------------------ helpers

    def _notify_created(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, decision: Decision, now: datetime
    ) -> None:
        messages = created_messages(
            policy, decision, esc.customer.get("email"), now, self.overrides
        )
        self._send(w, policy, esc, messages, now, "created")

    def _send(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        messages: Sequence[Message],
        now: datetime,
        event: str,
    ) -> None:
        handling = esc.snapshot["decision"].get("handling", [])
        allowed, held = apply_handling(policy, handling, messages)
        for h in held:
            self._log(
                w,
                esc,
                "notification.rerouted" if h.rerouted else "notification.held",
                SYSTEM,
                now,
                {
                    "channel": h.message.channel,
                    "to": h.message.to,
                    "audience": h.message.audience,
                    "rule": h.rule,
                },
                h.reason,
            )
        context = template_context(esc, policy, now)
        for i, m in enumerate(allowed):
            subject, body = render(policy, m.template, context)
            key = f"esc:{esc.id}:{event}:{i}:{m.channel}:{m.to}"
            w.outbox.enqueue(
                key=key[:300],
                channel=m.channel,
                recipient=m.to,
                audience=m.audience,
                template=m.template,
                payload={"subject": subject, "body": body, "via": m.via, "ref": esc.ref, **m.data},
                at=now,
                escalation_id=esc.id,
            )

    def record_sent(
        self,
        uow: UnitOfWork,
        escalation_id: int | None,
        *,
        channel: str,
        to: str,
        audience: str,
        template: str | None,
        at: datetime,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Called by the outbox delivery step once a message has gone out (the outbox row's
        foreign key guarantees its escalation exists)."""
        if escalation_id is None:
            return
        uow.timeline.append(
            escalation_id,
            at=at,
            actor=SYSTEM,
            kind="notification.sent",
            data={
                "channel": channel,
                "to": to,
                "audience": audience,
                "template": template,
                **(extra or {}),
            },
        )

    def _schedule(
        self, w: UnitOfWork, timers: Sequence[PlannedTimer], esc: EscalationRow, now: datetime
    ) -> None:
        for t in timers:
            w.timers.schedule(
                t.kind, t.due_at, t.key, t.payload, escalation_id=esc.id, created_at=now
            )

    def _schedule_followups(
        self, w: UnitOfWork, esc: EscalationRow, now: datetime, generation: int = 0
    ) -> None:
        timers = [
            followup_timer(esc.snapshot, esc.id, i, now, 1, generation)
            for i in range(len(esc.snapshot["followups"]))
        ]
        updates = update_timers(esc.snapshot, esc.id, now, 1, generation)
        self._schedule(w, [*timers, *updates], esc, now)

    def _log(
        self,
        w: UnitOfWork,
        esc: EscalationRow,
        kind: str,
        actor: str,
        at: datetime,
        data: dict[str, Any],
        reason: str | None = None,
    ) -> None:
        w.timeline.append(esc.id, at=at, actor=actor, kind=kind, reason=reason, data=data)
