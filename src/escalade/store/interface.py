"""The store's interface: what the service and the engine may ask of a database.

Two implementations: ``escalade.store.db.SqlStore`` (SQLAlchemy on SQLite or PostgreSQL,
production) and ``escalade.store.memory.MemoryStore`` (Python structures, for
``simulate``; ADR 0005). Both run the same store and engine tests. Nothing here imports
SQLAlchemy, so code that only needs the interface (and ``simulate``) does not load it.

A unit of work is one transaction and its repositories: nothing is kept unless it
commits; idempotency keys are unique forever, so doing a thing twice is a no-op; the
timeline has no way to change an entry.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Protocol

from escalade.errors import EscaladeError
from escalade.store.auditchain import AuditHead
from escalade.store.rows import (
    ApiKeyRow,
    AuditRow,
    DeliveryEvent,
    DeliveryRow,
    EscalationRow,
    NewAuditEntry,
    OutboxMessage,
    OverrideRow,
    PolicyVersionRow,
    TimelineEntry,
    TimerRow,
    TimerState,
    UserRow,
)

DEFAULT_DATABASE_URL = "sqlite:///./escalade.db"


class StoreError(EscaladeError):
    """The database cannot be used; the message says which and why, for a person."""


class NaiveDatetimeError(EscaladeError, ValueError):
    """A datetime without a time zone reached the store."""


class ConcurrentUpdate(EscaladeError):
    """An escalation changed since it was read (optimistic locking)."""


class TransientConflict(EscaladeError):
    """The database gave this unit of work up to keep concurrent ones consistent (a
    deadlock, a serialization failure): running it again from the start will do."""


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


# The escalation fields ``EscalationRepository.update`` may change.
ESCALATION_CHANGES = frozenset(
    {
        "subject",
        "state",
        "category",
        "team",
        "level",
        "priority",
        "owner",
        "snapshot",
        "customer",
        "package",
        "acknowledged_at",
        "resolved_at",
        "closed_at",
        "parent_id",
    }
)


@dataclass(frozen=True, slots=True)
class NewTimer:
    kind: str
    due_at: datetime
    key: str
    payload: Mapping[str, Any]
    escalation_id: int | None = None


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A timeline entry to append (``TimelineRepository.append_many``)."""

    escalation_id: int | None
    at: datetime
    actor: str
    kind: str
    reason: str | None = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """An outbox message to queue (``OutboxRepository.enqueue_many``)."""

    key: str
    channel: str
    recipient: str
    audience: str
    template: str | None
    payload: Mapping[str, Any]
    at: datetime
    escalation_id: int | None = None


class Deferred(Protocol):
    """Writes a unit of work holds back to send together (``UnitOfWork.defer``)."""

    def flush(self) -> None:
        """Write them now (in the unit of work's transaction)."""

    def discard(self) -> None:
        """Forget them: the block that made them was undone."""


class PolicyRepository(ABC):
    """Every policy text ever applied, once per distinct content."""

    @abstractmethod
    def add(self, *, name: str, content: str, applied_by: str, at: datetime) -> PolicyVersionRow:
        """Record a policy text; applying identical content again returns the first record."""

    @abstractmethod
    def get(self, policy_version_id: int) -> PolicyVersionRow | None: ...

    @abstractmethod
    def by_hash(self, digest: str) -> PolicyVersionRow | None: ...

    @abstractmethod
    def latest(self, name: str | None = None) -> PolicyVersionRow | None:
        """The most recently applied version (of the named policy, if given)."""

    @abstractmethod
    def history(self, name: str | None = None) -> list[PolicyVersionRow]: ...

    @abstractmethod
    def activate(self, policy_version_id: int, *, by: str, at: datetime) -> None:
        """Make a version the active one for every process on this database (one row;
        the newest wins)."""

    @abstractmethod
    def active_id(self) -> int | None:
        """The version made active last (None before any): a one-row read, cheap enough
        for every process to check often."""


class EscalationRepository(ABC):
    """Escalations at run time. ``snapshot`` is written once, at the start: the decision,
    the resolved ladder and targets, so a later policy change never alters it."""

    @abstractmethod
    def add(
        self,
        *,
        policy_version_id: int,
        snapshot: Mapping[str, Any],
        at: datetime,
        ref: str | None = None,
        state: str = "open",
        subject: str = "",
        category: str | None = None,
        team: str | None = None,
        level: str | None = None,
        priority: str | None = None,
        owner: str | None = None,
        customer: Mapping[str, Any] | None = None,
        package: Mapping[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> EscalationRow:
        """Insert an escalation. Without ``ref`` it gets ``ESC-<id>``."""

    @abstractmethod
    def get(self, escalation_id: int) -> EscalationRow | None: ...

    def get_many(self, escalation_ids: Iterable[int]) -> dict[int, EscalationRow]:
        """The escalations of these ids that exist (the SQL store reads them at once)."""
        found = {}
        for eid in set(escalation_ids):
            row = self.get(eid)
            if row is not None:
                found[eid] = row
        return found

    @abstractmethod
    def get_by_ref(self, ref: str) -> EscalationRow | None: ...

    @abstractmethod
    def lock(self, escalation_id: int) -> EscalationRow | None:
        """Read and lock the row until commit (``FOR UPDATE`` on PostgreSQL; on SQLite the
        unit of work already holds the write lock)."""

    @abstractmethod
    def update(
        self, escalation_id: int, *, expected_version: int, at: datetime, **changes: Any
    ) -> EscalationRow:
        """Change fields if nobody else did since ``expected_version`` was read; bumps the
        version and ``updated_at``. Raises ``ConcurrentUpdate`` otherwise."""

    @abstractmethod
    def find(
        self,
        *,
        states: Iterable[str] | None = None,
        team: str | None = None,
        parent_id: int | None = None,
        category: str | None = None,
        created_since: datetime | None = None,
        top_level: bool = False,
        limit: int = 100,
        offset: int = 0,
        before_id: int | None = None,
        teams: Collection[str] | None = None,
        hidden_categories: Collection[str] = (),
        unless_teams: Collection[str] = (),
        priority: str | None = None,
    ) -> list[EscalationRow]:
        """Newest first, filtered (``top_level``: not linked to a parent incident).

        ``before_id``: only older ones (a cursor); ``teams``: only these teams';
        ``hidden_categories``: leave out these categories unless the escalation's team is
        in ``unless_teams`` (confidential matters)."""

    @abstractmethod
    def count_by_state(self) -> dict[str, int]: ...


class TimelineRepository(ABC):
    """Append-only record of everything that happened to an escalation."""

    @abstractmethod
    def append(
        self,
        escalation_id: int | None,
        *,
        at: datetime,
        actor: str,
        kind: str,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> TimelineEntry: ...

    def append_many(self, entries: Sequence[NewEntry]) -> None:
        """Append entries in this order (the SQL store: one multi-row statement)."""
        for e in entries:
            self.append(
                e.escalation_id, at=e.at, actor=e.actor, kind=e.kind, reason=e.reason, data=e.data
            )

    @abstractmethod
    def for_escalation(self, escalation_id: int) -> list[TimelineEntry]:
        """In the order things were recorded."""

    @abstractmethod
    def after(self, after_id: int = 0, limit: int = 1000) -> list[TimelineEntry]:
        """Entries with id above ``after_id``, in record order (to stream new entries)."""


class TimerRepository(ABC):
    """Durable timers. A key is unique forever: scheduling it again is a no-op, even after
    the timer fired or was cancelled (put a generation or level in the key to re-arm)."""

    @abstractmethod
    def schedule(
        self,
        kind: str,
        due_at: datetime,
        key: str,
        payload: Mapping[str, Any] | None = None,
        *,
        escalation_id: int | None = None,
        created_at: datetime | None = None,
    ) -> bool:
        """Add a pending timer; ``False`` if the key was already scheduled."""

    @abstractmethod
    def schedule_many(
        self, timers: Sequence[NewTimer], *, created_at: datetime | None = None
    ) -> None:
        """Bulk form of ``schedule`` (one executemany); existing keys are skipped."""

    @abstractmethod
    def get(self, key: str) -> TimerRow | None: ...

    @abstractmethod
    def cancel(self, key: str) -> bool:
        """Cancel a pending timer; ``False`` if it was not pending."""

    @abstractmethod
    def cancel_for_escalation(self, escalation_id: int, kinds: Iterable[str] | None = None) -> int:
        """Cancel an escalation's pending timers (of the given kinds); returns how many."""

    @abstractmethod
    def find(
        self,
        *,
        escalation_id: int | None = None,
        states: Iterable[str] | None = (TimerState.pending.value,),
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[TimerRow]:
        """Timers in due order (pending ones by default)."""

    @abstractmethod
    def next_due(self, kinds: Iterable[str] | None = None) -> datetime | None:
        """When the earliest pending timer becomes claimable: its due time, or the end of
        its lease if a worker holds it or backs off from it. ``simulate`` jumps to it."""

    @abstractmethod
    def claim(
        self,
        *,
        kinds: Iterable[str],
        now: datetime,
        limit: int,
        worker: str,
        lease_until: datetime,
    ) -> list[TimerRow]:
        """Take up to ``limit`` due timers for ``worker`` until ``lease_until``, in due order.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint rows.
        A claim whose lease ran out (the worker crashed) is claimable again.
        """

    @abstractmethod
    def finish(self, fired: Sequence[tuple[int, bool]], *, now: datetime) -> None:
        """Mark claimed timers done: ``(id, late)`` pairs, one executemany."""

    @abstractmethod
    def fail(self, timer_id: int, *, error: str, retry_at: datetime | None) -> None:
        """A handler failed: retry at ``retry_at``, or give up (state ``failed``) if None."""


class OutboxRepository(ABC):
    """Messages to deliver, written in the same transaction as the change that causes them."""

    @abstractmethod
    def enqueue(
        self,
        *,
        key: str,
        channel: str,
        recipient: str,
        audience: str,
        template: str | None,
        payload: Mapping[str, Any],
        at: datetime,
        escalation_id: int | None = None,
    ) -> bool:
        """Queue a message; ``False`` if a message with this key was already queued."""

    def enqueue_many(self, messages: Sequence[NewMessage]) -> int:
        """Queue messages in this order (the SQL store: one multi-row statement, and one
        for their ``queued`` log rows); keys queued before are skipped. Returns how many
        were queued."""
        queued = 0
        for m in messages:
            queued += self.enqueue(
                key=m.key,
                channel=m.channel,
                recipient=m.recipient,
                audience=m.audience,
                template=m.template,
                payload=m.payload,
                at=m.at,
                escalation_id=m.escalation_id,
            )
        return queued

    @abstractmethod
    def get(self, key: str) -> OutboxMessage | None: ...

    @abstractmethod
    def find(
        self,
        *,
        escalation_id: int | None = None,
        states: Iterable[str] | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OutboxMessage]:
        """In the order they were queued."""

    @abstractmethod
    def next_due(self) -> datetime | None: ...

    @abstractmethod
    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        worker: str,
        lease_until: datetime,
        channels: Iterable[str] | None = None,
    ) -> list[OutboxMessage]: ...

    @abstractmethod
    def mark_sent(self, ids: Sequence[int], *, at: datetime) -> None: ...

    @abstractmethod
    def fail(self, message_id: int, *, error: str, retry_at: datetime | None) -> None:
        """Delivery failed: try again at ``retry_at``, or give up (state ``failed``)."""

    @abstractmethod
    def cancel(self, ids: Sequence[int]) -> None:
        """Pending messages that must not go out any more (state ``cancelled``)."""


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery-log event to record (``DeliveryRepository.record_many``)."""

    message: OutboxMessage
    event: DeliveryEvent
    at: datetime
    instance: str | None = None
    error: str | None = None
    retry_at: datetime | None = None


class DeliveryRepository(ABC):
    """The delivery log: every event of every outbox message, append-only. ``enqueue``
    records ``queued``; the outbox step records each attempt's outcome."""

    @abstractmethod
    def record_many(self, events: Sequence[NewDelivery]) -> None:
        """Append events (one executemany); ``attempt`` is the message's attempt count."""

    @abstractmethod
    def for_escalation(self, escalation_id: int, *, limit: int = 10_000) -> list[DeliveryRow]:
        """An escalation's delivery log, in the order it was recorded."""

    @abstractmethod
    def for_message(self, key: str) -> list[DeliveryRow]:
        """One message's delivery log (by its idempotency key), in order."""


class ActivityRepository(ABC):
    """Product activity that threshold triggers count (who did what, how many times)."""

    @abstractmethod
    def record(self, *, actor: str, action: str, at: datetime, count: int = 1) -> None: ...

    @abstractmethod
    def total(
        self, *, action: str, since: datetime, until: datetime, actor: str | None = None
    ) -> int:
        """Sum of counts in ``[since, until)``, for one actor or everyone."""

    @abstractmethod
    def by_actor(
        self, *, action: str, since: datetime, until: datetime, more_than: int = 0
    ) -> dict[str, int]:
        """Actors whose total in ``[since, until)`` is above ``more_than``."""

    @abstractmethod
    def by_day(
        self, *, actor: str, action: str, since: datetime, until: datetime, tz: tzinfo = UTC
    ) -> dict[date, int]:
        """Totals per local day (in ``tz``) in ``[since, until)``: for 'on several days'."""


class AlertKeyRepository(ABC):
    """Deduplication: a monitoring alert key → the escalation it opened."""

    @abstractmethod
    def get(self, key: str) -> int | None: ...

    @abstractmethod
    def escalation(self, key: str) -> EscalationRow | None:
        """The escalation the key is mapped to, in one indexed lookup (the repeat path of
        an alert storm)."""

    @abstractmethod
    def bind(self, key: str, escalation_id: int, *, at: datetime) -> bool:
        """Map the key to the escalation; ``False`` if the key is already mapped."""

    @abstractmethod
    def release(self, key: str) -> bool:
        """Forget the key (the alert resolved); the next firing opens a new escalation."""


class KeyLocks(ABC):
    """Locks by name, held until the unit of work ends: a use case that must decide "is this
    key new?" takes the key's lock first, so concurrent units of work on the same key run one
    after the other and each sees what the previous one committed (PostgreSQL: a
    transaction-level advisory lock; SQLite and the memory store already run one writing
    unit of work at a time)."""

    @abstractmethod
    def acquire(self, *names: str) -> None:
        """Wait for and hold the locks of ``names`` (taken in sorted order: no deadlock
        between two units of work asking for the same set)."""


class GroupRepository(ABC):
    """Which escalations share a grouping key (a related-issue threshold's customer,
    category, alert key or subject), by key and time: finding the related escalations
    of a new one reads only those, never every open escalation."""

    @abstractmethod
    def add(self, escalation_id: int, keys: Sequence[str], *, at: datetime) -> None:
        """File an escalation under its grouping keys, created at ``at``."""

    @abstractmethod
    def active_members(self, key: str, *, since: datetime) -> list[EscalationRow]:
        """The escalations filed under ``key`` since ``since`` that are still active and not
        linked to a parent incident, oldest first."""


class ActionLedger(ABC):
    """The exactly-once ledger. Record an action's key in the same transaction as the
    action: if the key is already there, the action was done and must be skipped."""

    @abstractmethod
    def record(self, key: str, *, worker: str, at: datetime) -> bool:
        """``True`` if the key is new (go ahead), ``False`` if the action was done."""

    @abstractmethod
    def record_many(self, keys: Sequence[str], *, worker: str, at: datetime) -> set[str]:
        """Record many keys at once; returns the ones that were new."""

    @abstractmethod
    def is_done(self, key: str) -> bool: ...


class UserRepository(ABC):
    """People who sign in: one row per e-mail address (kept lower-case)."""

    @abstractmethod
    def add(
        self,
        *,
        email: str,
        role: str,
        teams: Sequence[str],
        at: datetime,
        password_hash: str | None = None,
        person: str | None = None,
    ) -> UserRow | None:
        """Add a user; ``None`` if the address is taken."""

    @abstractmethod
    def get_by_email(self, email: str) -> UserRow | None: ...

    @abstractmethod
    def list_all(self) -> list[UserRow]:
        """In the order they were added."""

    @abstractmethod
    def update(self, email: str, **changes: Any) -> UserRow | None:
        """Change ``role``, ``teams``, ``password_hash``, ``person`` or ``disabled_at``;
        ``None`` if there is no such user."""


USER_CHANGES = frozenset({"role", "teams", "password_hash", "person", "disabled_at"})


class ApiKeyRepository(ABC):
    """API keys, by name (unique forever) and by the hash of their secret."""

    @abstractmethod
    def add(
        self,
        *,
        name: str,
        secret_hash: str,
        scopes: Sequence[str],
        teams: Sequence[str],
        created_by: str,
        at: datetime,
    ) -> ApiKeyRow | None:
        """Add a key; ``None`` if the name is taken (also by a revoked key)."""

    @abstractmethod
    def get(self, name: str) -> ApiKeyRow | None: ...

    @abstractmethod
    def by_hash(self, secret_hash: str) -> ApiKeyRow | None: ...

    @abstractmethod
    def list_all(self) -> list[ApiKeyRow]:
        """In the order they were made."""

    @abstractmethod
    def revoke(self, name: str, *, at: datetime) -> ApiKeyRow | None:
        """Revoke a key (again is harmless); ``None`` if there is no such key."""

    @abstractmethod
    def touch(self, key_id: int, *, at: datetime) -> None:
        """Record that the key was used at ``at``."""


class AuditRepository(ABC):
    """The append-only, hash-chained audit log. ``append`` serialises writers (a row
    lock on the head on PostgreSQL) so the chain never forks."""

    @abstractmethod
    def append(self, entry: NewAuditEntry) -> AuditRow: ...

    @abstractmethod
    def entries(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRow]:
        """In id order, from ``after_id``."""

    @abstractmethod
    def head(self) -> AuditHead | None:
        """The number of entries written and the last hash (None: never written)."""


class OverrideRepository(ABC):
    """On-call overrides made over the API (``oncall_overrides``)."""

    @abstractmethod
    def add(
        self,
        *,
        schedule: str,
        person: str,
        start_at: datetime,
        end_at: datetime,
        created_by: str,
        created_at: datetime,
        replaces: str | None = None,
        reason: str | None = None,
    ) -> OverrideRow: ...

    @abstractmethod
    def get(self, override_id: int) -> OverrideRow | None: ...

    @abstractmethod
    def for_schedule(
        self, schedule: str, *, ending_after: datetime | None = None
    ) -> list[OverrideRow]:
        """A schedule's overrides in the order they were made (a later one wins where
        they overlap), only those ending after ``ending_after`` when given."""

    @abstractmethod
    def delete(self, override_id: int) -> OverrideRow | None:
        """Remove one; what it was, or None when there is no such override."""


class UnitOfWork(ABC):
    """One transaction and the repositories that work in it."""

    dialect: str
    policies: PolicyRepository
    escalations: EscalationRepository
    timeline: TimelineRepository
    timers: TimerRepository
    outbox: OutboxRepository
    deliveries: DeliveryRepository
    activity: ActivityRepository
    alert_keys: AlertKeyRepository
    actions: ActionLedger
    locks: KeyLocks
    groups: GroupRepository
    users: UserRepository
    api_keys: ApiKeyRepository
    audit: AuditRepository
    overrides: OverrideRepository

    @abstractmethod
    def commit(self) -> None:
        """Keep what the unit of work did (a later change starts a new transaction)."""

    @abstractmethod
    def rollback(self) -> None:
        """Undo what it did since the last commit."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """Undo only what happens inside the block if it raises."""

    def defer(self, pending: Deferred) -> None:
        """Hold ``pending`` writes back until the unit of work next reads or writes
        anything else, ends a savepoint, or commits, so many small writes travel as a few
        multi-row statements; nothing can observe the difference. A savepoint undone or a
        rollback discards them. This default (the memory store) writes them at once."""
        pending.flush()

    def flush(self) -> None:  # noqa: B027 - nothing to do where nothing is held back
        """Write what ``defer`` holds back now."""


class Store(ABC):
    """Where escalations live: hands out units of work."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """``sqlite``, ``postgresql`` or ``memory``."""

    @abstractmethod
    def unit_of_work(self, *, readonly: bool = False) -> AbstractContextManager[UnitOfWork]:
        """A transaction; call ``uow.commit()`` to keep its work, otherwise it is rolled
        back when the block ends (also on error). ``readonly=True`` is for pages and
        reports."""

    @abstractmethod
    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (the newest by default)."""

    @abstractmethod
    def current_revision(self) -> str | None:
        """The schema revision the store is at (None: empty)."""

    @abstractmethod
    def dispose(self) -> None:
        """Let go of connections (or, in memory, of everything)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the store is, for messages (a URL without its password)."""
