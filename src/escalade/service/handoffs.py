"""On-call hand-offs: at each rotation boundary of a schedule, the escalations still open
for its teams pass from the person going off call to the one coming on (seed 000: "on-call
handoff procedures"). Recorded as ``oncall.handoff`` (docs/contracts.md): schedule, from,
to and the refs still open that the person coming on is responsible for (``responsible``:
every team, level, ladder or ownership that reaches them, not one team's).

A hand-off is a durable timer like any other, scheduled when a policy is applied and
re-armed by each hand-off for the next; a hand-off of a policy version that has since been
replaced does nothing (the new version has its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from escalade.escalation.kinds import SYSTEM, EventKind, TimerKind
from escalade.escalation.lifecycle import ACTIVE_STATES
from escalade.escalation.snapshot import PlannedTimer, Snapshot
from escalade.oncall.schedule import Override, next_handoff, on_call
from escalade.policy.models import Policy, Schedule
from escalade.store import UnitOfWork
from escalade.store.rows import EscalationRow, TimerRow


def handoff_timer(version_id: int, schedule: Schedule, after: datetime) -> PlannedTimer:
    """The next hand-off of ``schedule`` strictly after ``after``."""
    at = next_handoff(schedule, after)
    return PlannedTimer(
        TimerKind.oncall_handoff,
        at,
        f"oncall:{version_id}:{schedule.id}:{at.isoformat()}",
        {"schedule": schedule.id, "policy_version": version_id},
    )


def _arm(uow: UnitOfWork, timer: PlannedTimer, now: datetime) -> None:
    uow.timers.schedule(timer.kind.value, timer.due_at, timer.key, timer.payload, created_at=now)


def schedule_handoffs(uow: UnitOfWork, version_id: int, policy: Policy, now: datetime) -> None:
    """Arm the next hand-off of every schedule of a newly applied policy version."""
    for schedule in policy.schedules:
        _arm(uow, handoff_timer(version_id, schedule, now), now)


def handoff(
    uow: UnitOfWork,
    policy: Policy,
    timer: TimerRow,
    now: datetime,
    overrides: Sequence[Override],
) -> None:
    """Record one hand-off of the timer's schedule and arm the next (``policy`` is the
    version the timer names; ``overrides`` those of its schedule)."""
    version = int(timer.payload["policy_version"])
    latest = uow.policies.latest(policy.id)
    if latest is None or latest.id != version:
        return  # a later version of this policy has its own hand-offs
    schedule = next((s for s in policy.schedules if s.id == timer.payload["schedule"]), None)
    if schedule is None:
        return
    at = now if timer.late else timer.due_at
    before = on_call(schedule, at - timedelta(microseconds=1), overrides)
    after = on_call(schedule, at, overrides)
    if before[:1] != after[:1]:
        incoming = after[0] if after else None
        still_open = sorted(
            (
                e
                for e in uow.escalations.find(states=ACTIVE_STATES, limit=10_000)
                if responsible(policy, schedule.id, incoming, e)
            ),
            key=lambda e: e.id,
        )
        uow.timeline.append(
            None,
            at=at,
            actor=SYSTEM,
            kind=EventKind.oncall_handoff.value,
            data={
                "schedule": schedule.id,
                "from": before[0] if before else None,
                "to": after[0] if after else None,
                "open": [e.ref for e in still_open],
                **({"late": True} if timer.late else {}),
            },
        )
    _arm(uow, handoff_timer(version, schedule, at), now)


def responsible(policy: Policy, schedule_id: str, person: str | None, e: EscalationRow) -> bool:
    """Whether the person coming on call for ``schedule_id`` is responsible for the open
    escalation ``e`` (of ``policy``): its team, a team engaged with it (``also``) or the
    team working its level pages that schedule; its ladder pages the schedule; or it is
    the person's own (owner). Escalations of other policies are not theirs."""
    snap = Snapshot.of(e.snapshot)
    if snap.policy_id is not None and snap.policy_id != policy.id:
        return False
    if person is not None and e.owner == person:
        return True
    paged_by = {t.id for t in policy.teams if t.schedule == schedule_id}
    level = next((lv for lv in policy.levels if lv.id == e.level), None)
    teams = {e.team, *(snap.decision.raw.get("also") or ())}
    if level is not None and level.team is not None:
        teams.add(level.team)
    if teams & paged_by:
        return True
    ladder = snap.ladder
    return ladder is not None and any(
        who.schedule == schedule_id for step in ladder.steps for who in step.notify
    )
