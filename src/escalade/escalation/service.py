"""The escalation service: every use case runs here, in one unit of work.

``create``, ``act`` (acknowledge, escalate, resolve, …), ``alert``, ``record_activity`` and
the timer handlers change escalations, append to their timeline, queue messages in the
outbox and schedule timers, all in the same transaction. The API, the CLI, the engine and
``simulate`` call these functions; none of them can skip validation or the timeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from escalade.clock import Clock
from escalade.durations import format_duration
from escalade.escalation import ladder as rungs
from escalade.escalation.lifecycle import (
    Action,
    EscalateCause,
    State,
    TransitionError,
    next_state,
)
from escalade.escalation.notify import (
    Message,
    apply_handling,
    manager_of,
    render,
    resolve,
    style_channel,
)
from escalade.escalation.snapshot import (
    PlannedTimer,
    followup_timer,
    ladder_timers,
    sla_timers,
    snapshot_calendar,
    update_timer,
)
from escalade.escalation.snapshot import build_snapshot as _snapshot
from escalade.oncall.schedule import Override
from escalade.policy.models import (
    Audience,
    Ladder,
    Policy,
    Recipient,
    TriggerKind,
)
from escalade.routing.models import Decision, EscalationInput
from escalade.routing.router import Router
from escalade.store.db import Store, UnitOfWork
from escalade.store.rows import EscalationRow, TimerRow

SYSTEM = "escalade"


class NotFound(LookupError):
    pass


class ActionRefused(ValueError):
    """An action refused with the reason (invalid transition, bad target …)."""


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
        with self.store.unit_of_work() as uow:
            row = uow.policies.add(
                name=policy.id, content=content, applied_by=by, at=self.clock.now()
            )
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
            self._related_threshold(w, active.policy, esc, now)
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
            handler: Callable[..., EscalationRow] = getattr(self, f"_on_{action.value}")
            return handler(
                w, policy, esc, new_state, by=by, reason=reason, to=to, text=text, now=now
            )

    def _update(
        self, w: UnitOfWork, esc: EscalationRow, now: datetime, **changes: Any
    ) -> EscalationRow:
        return w.escalations.update(esc.id, expected_version=esc.version, at=now, **changes)

    def _on_acknowledge(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
        esc = self._update(w, esc, now, state=state.value, acknowledged_at=now, owner=by)
        self._log(w, esc, "escalation.acknowledged", by, now, {"by": by})
        return esc

    def _on_investigate(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
        changes: dict[str, Any] = {"state": state.value}
        if esc.acknowledged_at is None:
            changes["acknowledged_at"] = now
        esc = self._update(w, esc, now, **changes)
        self._log(w, esc, "escalation.investigating", by, now, {"by": by})
        return esc

    def _on_escalate(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        reason: str | None,
        to: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
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
        esc = self._update(w, esc, now, team=rung.team, level=rung.level, owner=owner)
        self._log(
            w,
            esc,
            "escalation.escalated",
            by,
            now,
            {
                "from_level": from_level,
                "to_level": rung.level,
                "team": rung.team,
                "cause": cause.value,
                "via": rung.via,
                **({"owner": owner} if owner else {}),
            },
            reason,
        )
        target = Recipient(team=rung.team) if rung.team else None
        if target is not None:
            style = self._priority_style(policy, esc.priority)
            messages = [
                Message(style_channel(style), to_, Audience.internal.value, None, via=via)
                for to_, via in resolve(
                    policy,
                    target,
                    team=rung.team,
                    customer_email=None,
                    at=now,
                    overrides=self.overrides,
                )
            ]
            self._send(w, policy, esc, messages, now, f"escalated:{esc.version}")
        return esc

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

    def _on_deescalate(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        reason: str | None,
        to: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
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

    def _on_reassign(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        reason: str | None,
        to: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
        if not to:
            raise ActionRefused("reassign needs 'to': a team or a person")
        teams = {t.id for t in policy.teams}
        people = {p.id for p in policy.people}
        if to in teams:
            esc2 = self._update(w, esc, now, team=to, owner=None)
            data = {"from": esc.team, "to": to, "by": by, "handoff": True}
        elif to in people or not people:
            esc2 = self._update(w, esc, now, owner=to)
            data = {"from": esc.owner or esc.team, "to": to, "by": by, "handoff": True}
        else:
            raise ActionRefused(f"'{to}' is neither a team nor a person of the policy")
        self._log(w, esc2, "escalation.reassigned", by, now, data, reason)
        return esc2

    def _on_waiting_on_customer(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        reason: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
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

    def _on_customer_reply(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        text: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
        self._log(w, esc, "customer.replied", by, now, {"text": text or ""})
        paused = self._paused_since(w, esc)
        if paused is not None and State(esc.state) not in (State.resolved, State.closed):
            self._resume(w, esc, paused, now)
        return esc

    def _on_comment(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        text: str | None,
        reason: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
        self._log(w, esc, "escalation.comment", by, now, {"by": by, "text": text or reason or ""})
        return esc

    def _on_resolve(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        reason: str | None,
        text: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
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

    def _on_reopen(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        reason: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
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
        return esc

    def _on_close(
        self,
        w: UnitOfWork,
        policy: Policy,
        esc: EscalationRow,
        state: State,
        *,
        by: str,
        reason: str | None,
        now: datetime,
        **_: Any,
    ) -> EscalationRow:
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
        for e in w.timeline.for_escalation(esc.id):
            if e.kind == "sla.paused":
                spans.append((start, e.at))
            elif e.kind == "sla.resumed":
                start = e.at
        used = sum((calendar.elapsed(a, b) for a, b in spans), timedelta(0))
        generation = (
            sum(1 for e in w.timeline.for_escalation(esc.id) if e.kind == "sla.resumed") + 1
        )
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
        """Engine entry point: one due timer of an escalation."""
        if timer.escalation_id is None:
            return
        esc = uow.escalations.lock(timer.escalation_id)
        if esc is None:
            return
        policy = self.pinned(uow, esc.policy_version_id)
        at = timer.due_at if getattr(timer, "late", False) is False else now
        handler = {
            "sla.warning": self._timer_sla_warning,
            "sla.breach": self._timer_sla_breach,
            "ladder.step": self._timer_ladder,
            "followup": self._timer_followup,
            "update.due": self._timer_update,
        }.get(timer.kind)
        if handler is not None:
            handler(uow, policy, esc, timer, at)

    def _clock_stopped(self, w: UnitOfWork, esc: EscalationRow, clock: str) -> bool:
        state = State(esc.state)
        if state in (State.resolved, State.closed):
            return True
        if clock in ("response", "acknowledgement"):
            return esc.acknowledged_at is not None or state is State.investigating
        if clock == "investigation":
            return state is State.investigating
        if clock == "resolution":
            return self._paused_since(w, esc) is not None
        return False

    def _late(self, timer: TimerRow) -> dict[str, Any]:
        return {"late": True} if getattr(timer, "late", False) else {}

    def _timer_sla_warning(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
    ) -> None:
        clock = timer.payload["clock"]
        if self._clock_stopped(w, esc, clock):
            return
        self._log(
            w,
            esc,
            "sla.warning",
            SYSTEM,
            at,
            {
                "clock": clock,
                "due": timer.payload["due"].replace("+00:00", "Z"),
                "source": timer.payload.get("source"),
                **self._late(timer),
            },
        )

    def _timer_sla_breach(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
    ) -> None:
        clock = timer.payload["clock"]
        if self._clock_stopped(w, esc, clock):
            return
        self._log(
            w,
            esc,
            "sla.breached",
            SYSTEM,
            at,
            {
                "clock": clock,
                "due": timer.payload["due"].replace("+00:00", "Z"),
                "source": timer.payload.get("source"),
                **self._late(timer),
            },
        )
        breached_by = esc.team  # whose clock it was, before an escalation hands it on
        for action in esc.snapshot.get("on_breach", []):
            if action == "escalate":
                cause = (
                    EscalateCause.no_ack
                    if clock in ("response", "acknowledgement")
                    else EscalateCause.sla_breach
                )
                esc = self.escalate(
                    w,
                    policy,
                    esc,
                    cause=cause,
                    by=SYSTEM,
                    now=at,
                    reason=f"{clock} SLA breached",
                    strict=False,
                )
            elif action == "notify_manager":
                messages = [
                    Message(Channel_email, to_, Audience.internal.value, None, via=via)
                    for to_, via in manager_of(policy, breached_by)
                ]
                self._send(w, policy, esc, messages, at, f"breach:{clock}:manager")
            elif action == "raise_priority":
                esc = self._raise_priority(w, policy, esc, at, f"{clock} SLA breached")

    def _raise_priority(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, now: datetime, why: str
    ) -> EscalationRow:
        ids = [p.id for p in policy.priorities]
        if esc.priority not in ids or ids.index(esc.priority) == 0:
            return esc
        new = ids[ids.index(esc.priority) - 1]
        old = esc.priority
        esc = self._update(w, esc, now, priority=new)
        self._log(w, esc, "escalation.priority_raised", SYSTEM, now, {"from": old, "to": new}, why)
        return esc

    def _timer_ladder(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
    ) -> None:
        ladder = Ladder.model_validate(esc.snapshot["ladder"])
        step = ladder.steps[timer.payload["step"]]
        if self._stops(w, esc, [str(u) for u in step.unless]):
            return
        if (
            step.level
            and step.level != esc.level
            and esc.level in [lv.id for lv in policy.levels]
            and policy.level_rank(step.level) > policy.level_rank(esc.level or step.level)
        ):
            from_level = esc.level
            esc = self._update(w, esc, at, level=step.level)
            self._log(
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
                    "via": (
                        f"ladder '{ladder.id}' step {timer.payload['step'] + 1} "
                        f"at {format_duration(step.after)}"
                    ),
                    **self._late(timer),
                },
            )
        channel = (
            step.channel.value
            if step.channel
            else style_channel(self._priority_style(policy, esc.priority))
        )
        messages: list[Message] = []
        for who in step.notify:
            for to_, via in resolve(
                policy,
                who,
                team=esc.team,
                customer_email=esc.customer.get("email"),
                at=at,
                overrides=self.overrides,
            ):
                audience = Audience.customer.value if who.customer else Audience.internal.value
                messages.append(
                    Message(
                        channel if not who.customer else "email",
                        to_,
                        audience,
                        step.template,
                        via=via,
                        data={
                            "step": timer.payload["step"] + 1,
                            "ladder": ladder.id,
                            **({"note": step.note} if step.note else {}),
                            **self._late(timer),
                        },
                    )
                )
        self._send(w, policy, esc, messages, at, f"ladder:{timer.key}")

    def _stops(self, w: UnitOfWork, esc: EscalationRow, unless: Sequence[str]) -> bool:
        state = State(esc.state)
        if "resolved" in unless and state in (State.resolved, State.closed):
            return True
        if "acknowledged" in unless and (esc.acknowledged_at is not None):
            return True
        if "responded" in unless:
            if esc.acknowledged_at is not None or state is not State.open:
                return True
            people = {"escalation.comment", "escalation.acknowledged", "escalation.investigating"}
            if any(
                e.kind in people and e.actor != SYSTEM for e in w.timeline.for_escalation(esc.id)
            ):
                return True
        return state in (State.resolved, State.closed)

    def _timer_followup(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
    ) -> None:
        if State(esc.state) in (State.resolved, State.closed):
            return
        index, n = timer.payload["index"], timer.payload["n"]
        f = esc.snapshot["followups"][index]
        who = Recipient.model_validate(f["to"])
        targets = resolve(
            policy,
            who,
            team=esc.team,
            customer_email=esc.customer.get("email"),
            at=at,
            overrides=self.overrides,
        )
        self._log(
            w,
            esc,
            "reminder.due",
            SYSTEM,
            at,
            {
                "what": f["what"],
                "to": ", ".join(t for t, _ in targets) or who.label(),
                **self._late(timer),
            },
        )
        generation = timer.payload.get("generation", 0)
        nxt = followup_timer(esc.snapshot, esc.id, index, at, n + 1, generation)
        self._schedule(w, [nxt], esc, at)

    def _timer_update(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, timer: TimerRow, at: datetime
    ) -> None:
        if State(esc.state) in (State.resolved, State.closed):
            return
        audience = timer.payload["audience"]
        self._log(
            w,
            esc,
            "reminder.due",
            SYSTEM,
            at,
            {
                "what": f"{audience} update",
                "to": esc.owner or f"team:{esc.team}",
                **self._late(timer),
            },
        )
        generation = timer.payload.get("generation", 0)
        nxt = update_timer(esc.snapshot, esc.id, at, timer.payload["n"] + 1, generation)
        if nxt:
            self._schedule(w, [nxt], esc, at)

    # ------------------------------------------------------------------ triggers

    def _related_threshold(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, now: datetime
    ) -> None:
        """Several related escalations within a window become one parent incident."""
        if esc.package.get("fields", {}).get("incident"):
            return
        for trig in policy.triggers:
            th = trig.threshold
            if trig.kind is not TriggerKind.threshold or th is None or th.related is None:
                continue
            if th.related == "category" and esc.category is None:
                continue
            incident_key = f"{trig.id}:{self._related_key(th.related, esc)}"
            parent = next(
                (
                    e
                    for e in w.escalations.find(
                        states=["open", "acknowledged", "investigating"], limit=200
                    )
                    if e.package.get("fields", {}).get("incident") == incident_key
                ),
                None,
            )
            if parent is not None:
                recent = [esc]  # the incident is open already: a new related one joins it
            else:
                since = now - th.window
                earlier = [
                    e
                    for e in w.escalations.find(
                        states=["open", "acknowledged", "investigating"], limit=1000
                    )
                    if e.created_at >= since
                    and e.parent_id is None
                    and e.id != esc.id
                    and self._related(th.related, e, esc)
                    and not e.package.get("fields", {}).get("incident")
                ]
                recent = [*sorted(earlier, key=lambda e: e.id), esc]
                if len(recent) <= th.more_than:
                    continue
            refs = [e.ref for e in recent]
            created = parent is None
            if parent is None:
                inp = EscalationInput(
                    subject=(
                        f"Incident: {len(recent)} related escalations "
                        f"({th.related} {self._related_key(th.related, esc)})"
                    ),
                    description="\n".join(f"{e.ref}: {e.subject}" for e in recent),
                    category=trig.then.category or esc.category,
                    priority=trig.then.priority or esc.priority,
                    source="threshold",
                    fields={"incident": incident_key},
                )
                parent = self.create(
                    inp,
                    by=SYSTEM,
                    cause="threshold",
                    uow=w,
                    extra_reasons=[
                        f"threshold trigger '{trig.id}': more than {th.more_than} related "
                        f"escalations within {format_duration(th.window)}"
                    ],
                )
            for e in recent:
                if e.parent_id is None and e.id != parent.id:
                    w.escalations.update(
                        e.id,
                        expected_version=(w.escalations.get(e.id) or e).version,
                        at=now,
                        parent_id=parent.id,
                    )
            self._log(
                w,
                parent,
                "trigger.fired",
                SYSTEM,
                now,
                {
                    "trigger": trig.id,
                    "refs": refs,
                    **({"created": parent.ref} if created else {"incident": parent.ref}),
                },
            )

    @staticmethod
    def _related_key(kind: str, e: EscalationRow) -> str:
        if kind == "category":
            return str(e.category)
        if kind == "customer":
            return str(e.customer.get("email") or e.customer.get("id"))
        if kind == "alert_key":
            return str(e.package.get("fields", {}).get("alert_key"))
        return hashlib.sha1(e.subject.lower().encode()).hexdigest()[:12]

    def _related(self, kind: str, a: EscalationRow, b: EscalationRow) -> bool:
        return self._related_key(kind, a) == self._related_key(kind, b)

    # ------------------------------------------------------------------ helpers

    def _priority_style(self, policy: Policy, priority: str | None) -> str:
        p = next((x for x in policy.priorities if x.id == priority), None)
        return p.notify.value if p else "queue"

    def _notify_created(
        self, w: UnitOfWork, policy: Policy, esc: EscalationRow, decision: Decision, now: datetime
    ) -> None:
        messages: list[Message] = []
        matched_teams: set[str] = set()
        for rule in policy.notifications:
            if rule.priorities and decision.priority not in rule.priorities:
                continue
            if rule.teams and decision.team not in rule.teams:
                continue
            if (
                rule.when is not None
                and rule.when.category
                and decision.category not in rule.when.category
            ):
                continue
            targets = (
                [(rule.address, f"notification rule {rule.id}")]
                if rule.address
                else resolve(
                    policy,
                    rule.to,
                    team=decision.team,
                    customer_email=esc.customer.get("email"),
                    at=now,
                    overrides=self.overrides,
                )
            )
            for to_, via in targets:
                if to_ is None:
                    continue
                data = {"mention": rule.mention} if rule.mention else {}
                messages.append(
                    Message(
                        rule.channel.value,
                        to_,
                        rule.audience.value,
                        rule.template,
                        via=via,
                        data=data,
                    )
                )
            matched_teams.update(rule.teams or [decision.team])
        style = self._priority_style(policy, decision.priority)
        for team in [decision.team, *decision.also]:
            if not team or team in matched_teams:
                continue
            t = next((x for x in policy.teams if x.id == team), None)
            who = (
                Recipient(schedule=t.schedule)
                if (style == "page" and t and t.schedule)
                else Recipient(team=team)
            )
            for to_, via in resolve(
                policy, who, team=team, customer_email=None, at=now, overrides=self.overrides
            ):
                messages.append(
                    Message(style_channel(style), to_, Audience.internal.value, None, via=via)
                )
        for who_id in decision.notify:
            kind = (
                "role"
                if who_id in {r.id for r in policy.roles}
                else "team"
                if who_id in {t.id for t in policy.teams}
                else "person"
            )
            for to_, via in resolve(
                policy,
                Recipient.model_validate({kind: who_id}),
                team=decision.team,
                customer_email=None,
                at=now,
                overrides=self.overrides,
            ):
                messages.append(Message("email", to_, Audience.stakeholder.value, None, via=via))
        customer = esc.customer.get("email")
        if customer:
            tpl = next(
                (
                    t
                    for t in policy.templates
                    if t.audience is Audience.customer
                    and (not t.priorities or decision.priority in t.priorities)
                ),
                None,
            )
            if tpl is not None:
                messages.append(
                    Message(
                        (tpl.channel.value if tpl.channel else "email"),
                        customer,
                        Audience.customer.value,
                        tpl.id,
                        via="customer",
                    )
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
                "notification.held",
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
        context = self._context(esc)
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

    def _context(self, esc: EscalationRow) -> dict[str, Any]:
        """What message templates see: ``escalation`` (and its parts at the top level)."""
        d = esc.snapshot.get("decision", {})
        pkg = esc.package
        escalation = {
            "ref": esc.ref,
            "subject": esc.subject,
            "description": pkg.get("description", ""),
            "team": esc.team,
            "level": esc.level,
            "priority": esc.priority,
            "category": esc.category,
            "state": esc.state,
            "owner": esc.owner,
            "customer": esc.customer,
            "impact": pkg.get("impact", {}),
            "fields": pkg.get("fields", {}),
            "ticket": {"id": esc.ref, **pkg.get("ticket", {})},
            "channel": pkg.get("channel"),
            "amount": pkg.get("amount"),
            "reasons": d.get("reasons", []),
            "response_target": d.get("response_target"),
            "tags": d.get("tags", []),
            "handling": d.get("handling", []),
            "missing": d.get("missing", []),
            "created_at": _iso(esc.created_at),
        }
        return {
            "ref": esc.ref,
            "escalation": escalation,
            "customer": esc.customer,
            "package": pkg,
            "decision": d,
            "ticket": escalation["ticket"],
            "impact": escalation["impact"],
            "fields": escalation["fields"],
        }

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
        """Called by the outbox delivery step once a message has gone out."""
        if escalation_id is None:
            return
        esc = uow.escalations.get(escalation_id)
        if esc is None:
            return
        self._log(
            uow,
            esc,
            "notification.sent",
            SYSTEM,
            at,
            {
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
        upd = update_timer(esc.snapshot, esc.id, now, 1, generation)
        self._schedule(w, [*timers, *([upd] if upd else [])], esc, now)

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


Channel_email = "email"
