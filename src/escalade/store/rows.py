"""What the repositories return: frozen rows, never live ORM objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

R = TypeVar("R")


class TimerState(StrEnum):
    pending = "pending"
    done = "done"
    cancelled = "cancelled"
    failed = "failed"  # gave up after ``max_attempts`` handler errors (dead letter)


class OutboxState(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # gave up, or undeliverable (no channel, nobody to reach)
    cancelled = "cancelled"  # not sent: the escalation was acknowledged or resolved first


class DeliveryEvent(StrEnum):
    """One line of a message's delivery log."""

    queued = "queued"
    sent = "sent"
    failed = "failed"  # one attempt failed; ``error`` holds the provider's answer
    retrying = "retrying"  # another attempt is due at ``retry_at``
    gave_up = "gave_up"  # no attempts left
    undeliverable = "undeliverable"  # no channel configured, nobody on call, nobody staffed
    cancelled = "cancelled"  # the escalation was acknowledged or resolved before it went


@dataclass(frozen=True, slots=True)
class PolicyVersionRow:
    id: int
    content_hash: str
    name: str
    content: str
    applied_by: str
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class EscalationRow:
    id: int
    ref: str
    policy_version_id: int
    parent_id: int | None
    subject: str
    state: str
    category: str | None
    team: str | None
    level: str | None
    priority: str | None
    owner: str | None
    snapshot: dict[str, Any]
    customer: dict[str, Any]
    package: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    version: int


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    id: int
    escalation_id: int | None  # None: not about one escalation (an on-call hand-off)
    at: datetime
    actor: str
    kind: str
    reason: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TimerRow:
    """A durable timer. ``late`` is set when it fires more than the engine's tolerance
    after ``due_at``; handlers read it to say 'ran late' on the timeline."""

    id: int
    escalation_id: int | None
    kind: str
    due_at: datetime
    key: str
    payload: dict[str, Any]
    state: TimerState
    created_at: datetime | None = None
    claimed_by: str | None = None
    lease_until: datetime | None = None
    attempts: int = 0
    fired_at: datetime | None = None
    late: bool = False
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message waiting for (or past) delivery. ``key`` is its idempotency key: channels
    pass it on so a receiver can drop a duplicate after a crash between send and commit."""

    id: int
    key: str
    escalation_id: int | None
    channel: str
    recipient: str
    audience: str
    template: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    state: OutboxState = OutboxState.pending
    created_at: datetime | None = None
    available_at: datetime | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One event in the delivery log of one outbox message."""

    id: int
    message_id: int
    key: str  # the message's idempotency key
    escalation_id: int | None
    channel: str
    recipient: str
    event: DeliveryEvent
    at: datetime
    attempt: int = 0
    instance: str | None = None  # the configured channel instance that carried it
    error: str | None = None
    retry_at: datetime | None = None


def evolve(row: R, **changes: Any) -> R:
    """A copy of a row with some fields changed: ``dataclasses.replace`` without its
    per-call introspection (the engine copies rows in its hottest loops)."""
    make = _MAKERS.get(type(row))
    if make is None:
        make = _MAKERS[type(row)] = _maker(type(row))
    return make(row, changes)


_MAKERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


def _maker(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    """A copy-with-changes function written out for ``cls``'s fields (no getattr loop)."""
    names = [f.name for f in fields(cls)]
    lines = ["def make(row, changes):", "    new = new_(cls)"]
    lines += [
        f"    set_(new, {n!r}, changes[{n!r}] if {n!r} in changes else row.{n})" for n in names
    ]
    lines.append("    return new")
    namespace: dict[str, Any] = {"new_": object.__new__, "set_": object.__setattr__, "cls": cls}
    exec("\n".join(lines), namespace)  # as dataclasses writes __init__; names are our fields
    return namespace["make"]


# --------------------------------------------------------------------------- people and keys


@dataclass(frozen=True, slots=True)
class UserRow:
    """Someone who signs in. ``role`` is one of Escalade's roles (admin, lead, responder,
    viewer); ``teams`` the policy teams they belong to; ``person`` the policy person they
    are, if any (their policy roles and team memberships count too)."""

    id: int
    email: str
    role: str
    teams: list[str]
    password_hash: str | None
    person: str | None
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    """An API key. Only the SHA-256 of its secret is stored; ``teams`` empty means the key
    is not limited to teams."""

    id: int
    name: str
    secret_hash: str
    scopes: list[str]
    teams: list[str]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One entry of the audit log: who did (or tried) what, when, from where, with the
    value before and after. ``prev_hash`` chains it to the entry before; ``hash`` covers
    its own content and ``prev_hash`` (``escalade.store.auditchain``)."""

    id: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target: str
    outcome: str
    address: str | None
    before: Any
    after: Any
    detail: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class NewAuditEntry:
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target: str = ""
    outcome: str = "ok"
    address: str | None = None
    before: Any = None
    after: Any = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class OverrideRow:
    """An on-call override made over the API: ``person`` is on call in ``schedule`` from
    ``start_at`` to ``end_at`` (half-open, UTC) in place of ``replaces`` where that person
    is on call (or of the highest layer's person when None)."""

    id: int
    schedule: str
    person: str
    replaces: str | None
    start_at: datetime
    end_at: datetime
    reason: str | None
    created_by: str
    created_at: datetime
