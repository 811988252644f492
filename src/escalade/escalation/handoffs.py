"""On-call hand-offs: at each rotation boundary of a schedule, the escalations still open
for its teams pass from the person going off call to the one coming on (seed 000: "on-call
handoff procedures"). Recorded as ``oncall.handoff`` (spec/simulate.md): schedule, from,
to and the refs still open.

A hand-off is a durable timer like any other, scheduled when a policy is applied and
re-armed by each hand-off for the next; a hand-off of a policy version that has since been
replaced does nothing (the new version has its own).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from escalade.escalation.snapshot import PlannedTimer
from escalade.oncall.schedule import next_handoff, on_call
from escalade.policy.models import Policy, Schedule
from escalade.store import UnitOfWork
from escalade.store.rows import TimerRow

if TYPE_CHECKING:
    from escalade.escalation.service import EscalationService

SYSTEM = "escalade"
OPEN = ["open", "acknowledged", "investigating"]
KIND = "oncall.handoff"


def handoff_timer(version_id: int, schedule: Schedule, after: datetime) -> PlannedTimer:
    """The next hand-off of ``schedule`` strictly after ``after``."""
    at = next_handoff(schedule, after)
    return PlannedTimer(
        KIND,
        at,
        f"oncall:{version_id}:{schedule.id}:{at.isoformat()}",
        {"schedule": schedule.id, "policy_version": version_id},
    )


def schedule_handoffs(uow: UnitOfWork, version_id: int, policy: Policy, now: datetime) -> None:
    """Arm the next hand-off of every schedule of a newly applied policy version."""
    for schedule in policy.schedules:
        t = handoff_timer(version_id, schedule, now)
        uow.timers.schedule(t.kind, t.due_at, t.key, t.payload, created_at=now)


def handoff(service: EscalationService, uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
    """Record one hand-off and arm the next."""
    version = int(timer.payload["policy_version"])
    policy = service.pinned(uow, version)
    latest = uow.policies.latest(policy.id)
    if latest is None or latest.id != version:
        return  # a later version of this policy has its own hand-offs
    schedule = next((s for s in policy.schedules if s.id == timer.payload["schedule"]), None)
    if schedule is None:
        return
    at = now if timer.late else timer.due_at
    overrides = service.overrides.get(schedule.id, ())
    before = on_call(schedule, at - timedelta(microseconds=1), overrides)
    after = on_call(schedule, at, overrides)
    if before[:1] != after[:1]:
        teams = {t.id for t in policy.teams if t.schedule == schedule.id}
        still_open = sorted(
            (e for e in uow.escalations.find(states=OPEN, limit=10_000) if e.team in teams),
            key=lambda e: e.id,
        )
        uow.timeline.append(
            None,
            at=at,
            actor=SYSTEM,
            kind=KIND,
            data={
                "schedule": schedule.id,
                "from": before[0] if before else None,
                "to": after[0] if after else None,
                "open": [e.ref for e in still_open],
                **({"late": True} if timer.late else {}),
            },
        )
    nxt = handoff_timer(version, schedule, at)
    uow.timers.schedule(nxt.kind, nxt.due_at, nxt.key, nxt.payload, created_at=now)
