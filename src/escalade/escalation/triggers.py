"""Trigger rules as decisions. Pure.

Whether a trigger's condition holds for an escalation in flight, which priority an alert's
severity maps to, which threshold triggers count an activity, what makes escalations
"related", and the local day a threshold counts in. The service layer (``service.alerts``,
``service.activity``, ``service.incidents``) acts on these decisions.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from escalade.policy.models import Condition, Policy, Trigger, TriggerKind


class InFlight(Protocol):
    """What trigger conditions read of an escalation (a stored row satisfies it)."""

    @property
    def subject(self) -> str: ...
    @property
    def category(self) -> str | None: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def snapshot(self) -> dict[str, Any]: ...
    @property
    def customer(self) -> dict[str, Any]: ...
    @property
    def package(self) -> dict[str, Any]: ...


def holds_in_flight(when: Condition | None, esc: InFlight) -> bool:
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
        decision = esc.snapshot.get("decision") or {}
        tags = set(decision.get("tags", [])) | set(pkg.get("tags", []))
        checks.append(bool(tags & set(when.tags)))
    return all(checks)


def alert_priority(policy: Policy, severity: str | None) -> str | None:
    """The priority of an alert of ``severity``: the policy's severity map, a priority of
    that name, else the alerts' default."""
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


def alert_trigger(policy: Policy) -> Trigger | None:
    """The policy's trigger ``on: alert``, which completes what ``alerts:`` leaves open."""
    return next((t for t in policy.triggers if t.on == "alert"), None)


def activity_triggers(policy: Policy, action: str) -> list[Trigger]:
    """The threshold triggers that count an activity ``action``."""
    return [
        t
        for t in policy.triggers
        if t.kind is TriggerKind.threshold
        and t.threshold is not None
        and t.threshold.activity == action
    ]


def related_triggers(policy: Policy) -> list[Trigger]:
    """The threshold triggers over related escalations."""
    return [
        t
        for t in policy.triggers
        if t.kind is TriggerKind.threshold
        and t.threshold is not None
        and t.threshold.related is not None
    ]


def related_key(kind: str, e: InFlight) -> str | None:
    """What makes escalations related for a threshold trigger (``related: kind``): the same
    category, customer (email, else id; case-insensitive), customer and category together
    (``customer_category``: the same issue from one customer), alert key, or subject. None when
    the escalation has none: a missing or empty key never relates anything."""
    value: object
    if kind == "category":
        value = e.category
    elif kind == "customer":
        value = e.customer.get("email") or e.customer.get("id")
        value = str(value).strip().lower() if value is not None else None
    elif kind == "customer_category":
        # "multiple contacts for the same issue" (seed 000): one customer, one subject matter
        who = e.customer.get("email") or e.customer.get("id")
        who_text = str(who).strip().lower() if who is not None else ""
        value = f"{who_text}|{e.category}" if who_text and e.category else None
    elif kind == "alert_key":
        value = (e.package.get("fields") or {}).get("alert_key")
    else:
        value = hashlib.sha1(e.subject.lower().encode()).hexdigest()[:12] if e.subject else None
    text = str(value).strip() if value is not None else ""
    return text or None


def grouping_keys(policy: Policy, e: InFlight) -> dict[str, str]:
    """The escalation's grouping keys for the related-issue thresholds of ``policy``, by
    kind: ``<policy id>:<kind>:<value>`` (relations stay within one policy). Incidents
    (escalations that group others) have none."""
    if (e.package.get("fields") or {}).get("incident"):
        return {}
    keys: dict[str, str] = {}
    for trig in related_triggers(policy):
        assert trig.threshold is not None and trig.threshold.related is not None
        kind = trig.threshold.related
        value = related_key(kind, e)
        if value is not None:
            keys[kind] = f"{policy.id}:{kind}:{value}"
    return keys


def policy_timezone(policy: Policy) -> ZoneInfo:
    """The time zone a threshold's days are counted in: the default calendar's, else UTC."""
    if policy.default_calendar:
        return ZoneInfo(policy.get_calendar(policy.default_calendar).timezone)
    return ZoneInfo("UTC")
