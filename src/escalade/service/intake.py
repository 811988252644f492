"""Alert sources as they speak: Alertmanager's webhook (payload version 4), Prometheus's
alert push (the Alertmanager v2 API body), PagerDuty Events API v2, and a generic JSON
webhook mapped by the policy — each read into ``AlertIn`` values for ``receive_alert``.

Pure translation: no store, no clock of its own (callers pass ``now``). A body that cannot
be read raises ``IntakeError`` naming the field; the API answers it as each source's peer
does (docs/api.md, docs/integrations.md)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from escalade.errors import EscaladeError
from escalade.policy.models import Policy, WebhookMapping
from escalade.service.alerts import AlertIn

MAX_ALERTS = 1000
"""Alerts in one Alertmanager or Prometheus request, at most."""
MAX_SUBJECT = 2000
MAX_DESCRIPTION = 100_000
MAX_KEY = 250
"""An escalation's subject, description and an alert key, at most (longer text is cut; a
longer Alertmanager group key is replaced by its SHA-256)."""
KEY_ROOM = 300
"""The stored deduplication key ``source:key`` holds at most this many characters."""

_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class IntakeError(EscaladeError, ValueError):
    """A body that does not map: ``field`` is where (dotted), ``msg`` what is wrong."""

    def __init__(self, field: str, msg: str):
        super().__init__(f"{field}: {msg}")
        self.field = field
        self.msg = msg


# --------------------------------------------------------------------------- fingerprints


def fingerprint(labels: Mapping[str, str]) -> str:
    """The label set's fingerprint as Prometheus and Alertmanager compute it (FNV-1a 64
    over the sorted names and values, each followed by byte 255), as 16 hex digits: an
    alert pushed by Prometheus has the key Alertmanager would give it."""
    h = 14695981039346656037
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 255) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _label_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _subject(annotations: Mapping[str, str], labels: Mapping[str, str]) -> str:
    summary = annotations.get("summary") or annotations.get("title")
    if summary:
        return summary
    name = labels.get("alertname", "alert")
    where = labels.get("instance") or labels.get("job")
    return f"{name} on {where}" if where else name


def _description(annotations: Mapping[str, str], labels: Mapping[str, str], url: str) -> str:
    parts = [annotations.get("description") or annotations.get("message") or ""]
    parts.append(f"labels: {_label_text(labels)}")
    if url:
        parts.append(f"source: {url}")
    return "\n".join(p for p in parts if p)[:MAX_DESCRIPTION]


def _group_key(group_key: str) -> str:
    if len(group_key) <= MAX_KEY:
        return group_key
    return "sha256:" + hashlib.sha256(group_key.encode()).hexdigest()


# --------------------------------------------------------------------------- Alertmanager


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AmAlert(_Loose):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str | None = Field(None, max_length=64)


class AlertmanagerWebhook(_Loose):
    """Alertmanager's ``webhook_config`` body, version 4."""

    version: Literal["4"]
    groupKey: str = Field(min_length=1, max_length=2000)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AmAlert] = Field(min_length=1, max_length=MAX_ALERTS)


def from_alertmanager(body: AlertmanagerWebhook, policy: Policy) -> list[AlertIn]:
    """One alert per fingerprint, or one for the whole group (``alerts.escalation_per``)."""
    if policy.alerts.escalation_per == "group":
        firing = [a for a in body.alerts if a.status == "firing"]
        lines = [
            f"[{a.status}] {_subject(a.annotations, a.labels)} ({_label_text(a.labels)})"
            for a in body.alerts
        ]
        labels = body.commonLabels or body.groupLabels
        return [
            AlertIn(
                source="alertmanager",
                key=_group_key(body.groupKey),
                status=body.status,
                severity=body.commonLabels.get("severity"),
                summary=_subject(body.commonAnnotations, labels)[:MAX_SUBJECT],
                description="\n".join(
                    [f"{len(firing)} of {len(body.alerts)} alerts firing", *lines]
                )[:MAX_DESCRIPTION],
                fields={"alert_group": body.groupKey, "labels": body.groupLabels},
            )
        ]
    return [
        AlertIn(
            source="alertmanager",
            key=a.fingerprint or fingerprint(a.labels),
            status=a.status,
            severity=a.labels.get("severity"),
            summary=_subject(a.annotations, a.labels)[:MAX_SUBJECT],
            description=_description(a.annotations, a.labels, a.generatorURL),
            fields={"labels": a.labels, "alert_group": body.groupKey},
        )
        for a in body.alerts
    ]


# --------------------------------------------------------------------------- Prometheus


class PostableAlert(_Loose):
    """One alert of Alertmanager's ``POST /api/v2/alerts`` (what Prometheus sends)."""

    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""

    @field_validator("labels")
    @classmethod
    def _names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not re.match(_LABEL_NAME, name):
                raise ValueError(f"invalid label name '{name[:80]}'")
        return labels


def from_prometheus(alerts: list[PostableAlert], now: datetime) -> list[AlertIn]:
    """Firing unless ``endsAt`` is in the past (as Alertmanager reads it)."""
    out = []
    for i, a in enumerate(alerts):
        for stamp in (a.startsAt, a.endsAt):
            if stamp is not None and stamp.tzinfo is None:
                raise IntakeError(f"{i}", "startsAt and endsAt need a time zone (RFC 3339)")
        if a.startsAt and a.endsAt and a.endsAt < a.startsAt:
            raise IntakeError(f"{i}.endsAt", "start time must be before end time")
        resolved = a.endsAt is not None and a.endsAt <= now
        out.append(
            AlertIn(
                source="prometheus",
                key=fingerprint(a.labels),
                status="resolved" if resolved else "firing",
                severity=a.labels.get("severity"),
                summary=_subject(a.annotations, a.labels)[:MAX_SUBJECT],
                description=_description(a.annotations, a.labels, a.generatorURL),
                fields={"labels": a.labels},
            )
        )
    return out


# --------------------------------------------------------------------------- PagerDuty


class PdPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: str | None = Field(None, max_length=255)
    group: str | None = Field(None, max_length=255)
    class_: str | None = Field(None, alias="class", max_length=255)
    custom_details: Any = None


class PdEvent(BaseModel):
    """A PagerDuty Events API v2 event (``POST /v2/enqueue``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    routing_key: str = Field(min_length=1, max_length=200)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(None, min_length=1, max_length=255)
    payload: PdPayload | None = None
    images: list[Any] = Field(default_factory=list)
    links: list[Any] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None


def from_pagerduty(event: PdEvent) -> AlertIn:
    """Trigger, acknowledge or resolve by ``dedup_key`` (a trigger without one gets a new
    key, returned to the sender as PagerDuty does)."""
    if event.event_action == "trigger":
        if event.payload is None:
            raise IntakeError("payload", "is missing or blank")
        p = event.payload
        details = [p.summary]
        for name, value in (("component", p.component), ("group", p.group), ("class", p.class_)):
            if value:
                details.append(f"{name}: {value}")
        if p.custom_details is not None:
            details.append(f"details: {p.custom_details}")
        return AlertIn(
            source="pagerduty",
            key=event.dedup_key or uuid.uuid4().hex,
            status="firing",
            severity=p.severity,
            summary=p.summary,
            description="\n".join(details)[:MAX_DESCRIPTION],
            fields={"alert_source": p.source},
        )
    if event.dedup_key is None:
        raise IntakeError("dedup_key", f"is required to {event.event_action}")
    status = "acknowledged" if event.event_action == "acknowledge" else "resolved"
    return AlertIn(source="pagerduty", key=event.dedup_key, status=status)


# --------------------------------------------------------------------------- generic webhook


def lookup(body: Any, path: str) -> Any:
    """The value at ``path`` (a JSON pointer or a dotted path) in ``body``, or None."""
    if path.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    else:
        parts = path.split(".")
    here = body
    for part in parts:
        if isinstance(here, dict):
            if part not in here:
                return None
            here = here[part]
        elif isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
        else:
            return None
    return here


def _text(body: Any, path: str | None, field: str, *, required: bool = False) -> str | None:
    if path is None:
        return None
    value = lookup(body, path)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise IntakeError(field, f"the body has nothing at {path}")
        return None
    if isinstance(value, dict | list):
        raise IntakeError(field, f"{path} is an object or a list, not a value")
    return str(value).strip()


def from_webhook(name: str, hook: WebhookMapping, body: Any, policy: Policy) -> AlertIn:
    """The escalation (by the body's own id) that a mapped webhook body describes."""
    if not isinstance(body, dict):
        raise IntakeError("body", "a mapped webhook takes a JSON object")
    subject = _text(body, hook.subject, "subject", required=True)
    key = _text(body, hook.dedup_key, "dedup_key", required=True)
    assert subject is not None and key is not None
    most = min(MAX_KEY, KEY_ROOM - len(f"webhook:{name}:"))
    if len(key) > most:
        raise IntakeError("dedup_key", f"the value at {hook.dedup_key} is over {most} characters")
    category = _text(body, hook.category, "category")
    if category is not None:
        mapped = hook.categories.get(category) or hook.categories.get(category.lower())
        found = policy.find_category(mapped or category)
        if found is None:
            known = ", ".join(sorted(hook.categories)) or "none"
            raise IntakeError(
                "category",
                f"'{category[:80]}' at {hook.category} is not a category of the policy "
                f"nor a key of this webhook's categories ({known})",
            )
        category = found.id
    priority = _text(body, hook.priority, "priority")
    if priority is not None:
        mapped = hook.priorities.get(priority) or hook.priorities.get(priority.lower())
        found_p = policy.find_priority(mapped or priority)
        if found_p is None:
            known = ", ".join(sorted(hook.priorities)) or "none"
            raise IntakeError(
                "priority",
                f"'{priority[:80]}' at {hook.priority} is not a priority of the policy "
                f"nor a key of this webhook's priorities ({known})",
            )
        priority = found_p.id
    email = _text(body, hook.customer_email, "customer_email")
    resolved = False
    if hook.resolve_when is not None:
        value = lookup(body, hook.resolve_when.path)
        if value is not None and not isinstance(value, dict | list):
            resolved = str(value).strip().lower() in {v.lower() for v in hook.resolve_when.values}
    return AlertIn(
        source=f"webhook:{name}",
        key=key,
        status="resolved" if resolved else "firing",
        severity=priority,
        summary=subject[:MAX_SUBJECT],
        description=(_text(body, hook.description, "description") or "")[:MAX_DESCRIPTION],
        category=category,
        customer_email=email[:320] if email else None,
        channel=hook.channel,
    )
