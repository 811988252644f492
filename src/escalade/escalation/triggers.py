"""Triggers that come from outside an escalation: monitoring alerts (deduplicated by key)
and product activity counted by threshold triggers (seed 004: more than 10 households a
day, on several days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from escalade.durations import format_duration
from escalade.escalation.handlers import apply_trigger
from escalade.escalation.lifecycle import Action, State
from escalade.escalation.service import SYSTEM, EscalationService
from escalade.policy.models import Channel, Policy, Threshold, Trigger, TriggerKind
from escalade.routing.models import EscalationInput
from escalade.store import UnitOfWork
from escalade.store.rows import EscalationRow


@dataclass(frozen=True)
class AlertIn:
    """A monitoring alert as a webhook brings it (Alertmanager, PagerDuty Events v2)."""

    source: str
    key: str
    status: str  # firing | resolved
    severity: str | None = None
    summary: str = ""
    description: str = ""
    ref: str | None = None


def alert_priority(policy: Policy, severity: str | None) -> str | None:
    if severity:
        mapped = policy.alerts.severity.get(severity) or policy.alerts.severity.get(
            severity.lower()
        )
        if mapped:
            return mapped
        found = policy.find_priority(severity)
        if found:
            return found.id
    return policy.alerts.default_priority


def receive_alert(service: EscalationService, alert: AlertIn) -> EscalationRow | None:
    """Create, update or resolve the one escalation of an alert's deduplication key."""
    active = service._require_active()
    now = service.clock.now()
    dedup = f"{alert.source}:{alert.key}"
    with service.store.unit_of_work() as w:
        esc_id = w.alert_keys.get(dedup)
        esc = w.escalations.get(esc_id) if esc_id is not None else None
        if esc is not None and State(esc.state) in (State.resolved, State.closed):
            w.alert_keys.release(dedup)
            esc = None
        if alert.status == "resolved":
            if esc is None:
                w.commit()
                return None
            esc = service.act(
                esc.ref,
                Action.resolve,
                by=f"alert:{alert.source}",
                reason=f"alert {alert.key} resolved",
                uow=w,
            )
            w.alert_keys.release(dedup)
            w.commit()
            return esc
        if esc is not None:
            service._log(
                w,
                esc,
                "alert.repeated",
                f"alert:{alert.source}",
                now,
                {"key": alert.key, "severity": alert.severity, "summary": alert.summary},
            )
            w.commit()
            return esc
        policy = active.policy
        # the policy's alert trigger (``on: alert``) completes what ``alerts:`` leaves open
        trig = next((t for t in policy.triggers if t.on == "alert"), None)
        inp = EscalationInput(
            subject=alert.summary or alert.key,
            description=alert.description,
            category=policy.alerts.category or (trig.then.category if trig else None),
            priority=alert_priority(policy, alert.severity)
            or (trig.then.priority if trig else None),
            channel=Channel.alert,
            source=alert.source,
            fields={"alert_key": alert.key},
        )
        esc = service.create(
            inp,
            by=f"alert:{alert.source}",
            ref=alert.ref,
            cause="trigger",
            uow=w,
            extra_reasons=[
                f"monitoring alert '{alert.key}' from {alert.source} "
                f"({alert.severity or 'no severity'})"
            ],
        )
        w.alert_keys.bind(dedup, esc.id, at=now)
        service._log(
            w,
            esc,
            "trigger.fired",
            SYSTEM,
            now,
            {
                "trigger": trig.id if trig else "alert",
                "refs": [esc.ref],
                "key": alert.key,
                "created": esc.ref,
            },
        )
        if trig is not None:
            esc = apply_trigger(
                service,
                w,
                policy,
                esc,
                trig,
                now,
                f"monitoring alert '{alert.key}'",
                record=False,
            )
        w.commit()
        return esc


def _tz(policy: Policy) -> ZoneInfo:
    if policy.default_calendar:
        return ZoneInfo(policy.get_calendar(policy.default_calendar).timezone)
    return ZoneInfo("UTC")


def _over(
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


def record_activity(
    service: EscalationService,
    *,
    actor: str,
    action: str,
    count: int = 1,
    ref: str | None = None,
) -> list[EscalationRow]:
    """Store product activity and fire the threshold triggers it crosses (once per day).
    ``ref`` names the escalation a crossing creates (simulate scenarios act on it)."""
    active = service._require_active()
    policy = active.policy
    now = service.clock.now()
    tz = _tz(policy)
    created: list[EscalationRow] = []
    with service.store.unit_of_work() as w:
        w.activity.record(actor=actor, action=action, at=now, count=count)
        for trig in _activity_triggers(policy, action):
            th = trig.threshold
            assert th is not None
            over, why, day = _over(w, th, actor, action, now, tz)
            if not over:
                continue
            key = f"trigger:{trig.id}:{actor}:{day.isoformat()}"
            if w.alert_keys.get(key) is not None:
                continue  # fired for this actor today already
            open_key = f"trigger:{trig.id}:{actor}"
            esc_id = w.alert_keys.get(open_key)
            current = w.escalations.get(esc_id) if esc_id is not None else None
            if current is not None and State(current.state) in (State.resolved, State.closed):
                w.alert_keys.release(open_key)
                current = None
            if current is not None:
                # still open: fire on it again (once a day) instead of opening another
                w.alert_keys.bind(key, current.id, at=now)
                service._log(
                    w,
                    current,
                    "trigger.fired",
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
            esc = service.create(
                inp,
                by=SYSTEM,
                ref=ref if ref and not created else None,
                cause="threshold",
                uow=w,
                extra_reasons=[f"threshold trigger '{trig.id}' fired for {actor}: {why}"],
            )
            w.alert_keys.bind(key, esc.id, at=now)
            esc = apply_trigger(
                service,
                w,
                policy,
                esc,
                trig,
                now,
                f"threshold trigger '{trig.id}'",
                record=False,
            )
            w.alert_keys.bind(open_key, esc.id, at=now)
            service._log(
                w,
                esc,
                "trigger.fired",
                SYSTEM,
                now,
                {"trigger": trig.id, "refs": [esc.ref], "actor": actor, "created": esc.ref},
                why,
            )
            created.append(esc)
        w.commit()
    return created


def _activity_triggers(policy: Policy, action: str) -> list[Trigger]:
    return [
        t
        for t in policy.triggers
        if t.kind is TriggerKind.threshold
        and t.threshold is not None
        and t.threshold.activity == action
    ]
