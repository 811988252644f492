"""The ``record_activity`` use case: product activity counted by threshold triggers (seed
004: more than 10 households a day, on several days). A crossing opens an escalation, or
fires again (once a day) on the one still open for that actor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from escalade.clock import Clock
from escalade.durations import format_duration
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.lifecycle import is_done
from escalade.escalation.triggers import activity_triggers, policy_timezone
from escalade.policy.models import Threshold
from escalade.routing.models import EscalationInput
from escalade.service.create import Create
from escalade.service.effects import Effects
from escalade.service.moves import apply_trigger
from escalade.service.policies import PolicyBook
from escalade.store import UnitOfWork
from escalade.store.rows import EscalationRow


def over_threshold(
    w: UnitOfWork, th: Threshold, actor: str, action: str, now: datetime, tz: ZoneInfo
) -> tuple[bool, str, date]:
    """Whether an actor is over a threshold now, in words, and the local day it concerns."""
    today = now.astimezone(tz).date()
    if th.days is None:
        total = w.activity.total(
            action=action, actor=actor, since=now - th.window, until=now + timedelta(microseconds=1)
        )
        return (
            total > th.more_than,
            f"{total} {action} within {format_duration(th.window)} (more than {th.more_than})",
            today,
        )
    assert th.within is not None
    start_day = (now - th.within).astimezone(tz).date() + timedelta(days=1)
    since = datetime.combine(start_day, datetime.min.time(), tz).astimezone(UTC)
    days = w.activity.by_day(
        actor=actor, action=action, since=since, until=now + timedelta(microseconds=1), tz=tz
    )
    over = {d: n for d, n in days.items() if n > th.more_than}
    words = ", ".join(f"{d.isoformat()}: {n}" for d, n in sorted(over.items()))
    return (
        len(over) >= th.days and today in over,
        f"more than {th.more_than} {action} per day on {len(over)} days within "
        f"{format_duration(th.within)} ({words})",
        today,
    )


@dataclass
class RecordActivity:
    book: PolicyBook
    clock: Clock
    create: Create

    def __call__(
        self,
        fx: Effects,
        *,
        actor: str,
        action: str,
        count: int = 1,
        ref: str | None = None,
    ) -> list[EscalationRow]:
        """Store product activity and fire the threshold triggers it crosses (once per
        day). ``ref`` names the escalation a crossing creates (simulate scenarios act on
        it). In ``fx``'s unit of work (the caller commits)."""
        policy = self.book.require_active().policy
        now = self.clock.now()
        tz = policy_timezone(policy)
        created: list[EscalationRow] = []
        w = fx.uow
        w.activity.record(actor=actor, action=action, at=now, count=count)
        for trig in activity_triggers(policy, action):
            th = trig.threshold
            assert th is not None
            open_key = f"trigger:{trig.id}:{actor}"
            w.locks.acquire(open_key)  # counted and decided one unit of work at a time
            over, why, day = over_threshold(w, th, actor, action, now, tz)
            if not over:
                continue
            key = f"trigger:{trig.id}:{actor}:{day.isoformat()}"
            if w.alert_keys.get(key) is not None:
                continue  # fired for this actor today already
            esc_id = w.alert_keys.get(open_key)
            current = w.escalations.get(esc_id) if esc_id is not None else None
            if current is not None and is_done(current.state):
                w.alert_keys.release(open_key)
                current = None
            if current is not None:
                # still open: fire on it again (once a day) instead of opening another
                w.alert_keys.bind(key, current.id, at=now)
                fx.log(
                    current,
                    EventKind.trigger_fired,
                    SYSTEM,
                    now,
                    {"trigger": trig.id, "refs": [current.ref], "actor": actor},
                    why,
                )
                continue
            inp = EscalationInput(
                subject=f"{actor}: {why.split(' (')[0]}",
                description=f"Threshold trigger '{trig.id}': {why}.",
                category=trig.then.category,
                priority=trig.then.priority,
                source="threshold",
                fields={"actor": actor, "activity": action},
            )
            esc = self.create(
                fx,
                inp,
                by=SYSTEM,
                ref=ref if ref and not created else None,
                cause="threshold",
                extra_reasons=[f"threshold trigger '{trig.id}' fired for {actor}: {why}"],
            )
            w.alert_keys.bind(key, esc.id, at=now)
            esc = apply_trigger(
                fx, policy, esc, trig, now, f"threshold trigger '{trig.id}'", record=False
            )
            w.alert_keys.bind(open_key, esc.id, at=now)
            fx.log(
                esc,
                EventKind.trigger_fired,
                SYSTEM,
                now,
                {"trigger": trig.id, "refs": [esc.ref], "actor": actor, "created": esc.ref},
                why,
            )
            created.append(esc)
        return created
