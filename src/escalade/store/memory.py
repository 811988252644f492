"""``MemoryStore``: the store's repositories over plain Python structures, for ``simulate``.

Each class here implements its interface in ``interface.py``, as the SQL classes in
``db.py`` and ``repositories.py`` do, with the same meaning (ADR 0005). The store and
engine tests run on SQLite, PostgreSQL and this store; ``tests/store/test_memory_equivalence.py``
holds it to SQLite on random sequences of the engine's operations; every example scenario
must print the same on both (``tests/test_scenarios.py``). It does not load SQLAlchemy.

``simulate`` uses it because a scenario's database is thrown away anyway and a day with a
thousand escalations is hundreds of thousands of statements: here each one is a
dictionary operation instead of an SQLAlchemy round trip.

Semantics kept from the databases:

- a unit of work is a transaction: what it changed is undone unless it commits, and
  ``savepoint()`` undoes only its block on error; one unit of work runs at a time (a
  lock, as SQLite's ``BEGIN IMMEDIATE``);
- times must be aware and come back in UTC; JSON columns come back as JSON would (a
  ``datetime`` in a payload comes back as ISO text, a tuple as a list);
- idempotency keys are unique forever; ids only grow (like PostgreSQL sequences);
- the timeline has no way to change an entry.
"""

from __future__ import annotations

import heapq
import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from sortedcontainers import SortedList

from escalade.errors import IntegrityViolation
from escalade.store.auditchain import GENESIS, AuditHead, entry_hash
from escalade.store.interface import (
    ESCALATION_CHANGES,
    USER_CHANGES,
    ActionLedger,
    ActivityRepository,
    AlertKeyRepository,
    ApiKeyRepository,
    AuditRepository,
    ConcurrentUpdate,
    DeliveryRepository,
    EscalationRepository,
    GroupRepository,
    KeyLocks,
    NaiveDatetimeError,
    NewDelivery,
    NewTimer,
    OutboxRepository,
    OverrideRepository,
    PolicyRepository,
    Store,
    TimelineRepository,
    TimerRepository,
    UnitOfWork,
    UserRepository,
    content_hash,
)
from escalade.store.jsonvalues import dumps as _dumps
from escalade.store.rows import (
    ApiKeyRow,
    AuditRow,
    DeliveryEvent,
    DeliveryRow,
    EscalationRow,
    NewAuditEntry,
    OutboxMessage,
    OutboxState,
    OverrideRow,
    PolicyVersionRow,
    TimelineEntry,
    TimerRow,
    TimerState,
    UserRow,
    evolve,
)

MEMORY_URL = "memory://"
# A unique key taken or a reference to nothing is refused with ``IntegrityViolation``, as
# the SQL store refuses it.
_ACTIVE = frozenset({"open", "acknowledged", "investigating"})
_PENDING = TimerState.pending
_OUT_PENDING = OutboxState.pending


def _utc(value: datetime) -> datetime:
    if type(value) is datetime and value.tzinfo is UTC:
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(f"{value} has no time zone; Escalade stores aware UTC times")
    return value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _json(value: Any) -> Any:
    """What a JSON column gives back for ``value``: a fresh copy of plain values, and
    anything else (times, tuples, enums, models …) as the JSON encoder writes it."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                return json.loads(_dumps(value))
            out[k] = v if type(v) in _SCALARS else _json(v)
        return out
    if kind is list:
        return [v if type(v) in _SCALARS else _json(v) for v in value]
    return json.loads(_dumps(value))


# --------------------------------------------------------------------------- the data


class _DueQueue:
    """Rows nobody holds, in due order: a heap of ``(due, id)`` whose entries go stale
    when their row changes (claimed, done, cancelled, rolled back) and are dropped when
    met. ``due_of(id)`` is the row's due time while it is free, else None."""

    def __init__(self, due_of: Callable[[int], datetime | None]) -> None:
        self._heap: list[tuple[datetime, int]] = []
        self._due_of = due_of

    def push(self, due: datetime, rid: int) -> None:
        heapq.heappush(self._heap, (due, rid))

    def _live(self, entry: tuple[datetime, int]) -> bool:
        return self._due_of(entry[1]) == entry[0]

    def entries(self) -> list[tuple[datetime, int]]:
        """Every free row once, in due order."""
        return sorted({e for e in self._heap if self._live(e)})

    def first(self, accept: Callable[[int], bool]) -> datetime | None:
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        if not heap:
            return None
        if accept(heap[0][1]):
            return heap[0][0]
        return next((due for due, rid in self.entries() if accept(rid)), None)

    def take(
        self, now: datetime, limit: int, accept: Callable[[int], bool]
    ) -> list[tuple[datetime, int]]:
        """Remove and return up to ``limit`` free rows due by ``now`` that ``accept``
        takes, in due order. A caller that does not claim one must ``push`` it back."""
        heap = self._heap
        taken: list[tuple[datetime, int]] = []
        passed: list[tuple[datetime, int]] = []
        seen: set[int] = set()
        while heap and len(taken) < limit and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if entry[1] in seen or not self._live(entry):
                continue
            seen.add(entry[1])
            (taken if accept(entry[1]) else passed).append(entry)
        for entry in passed:
            heapq.heappush(heap, entry)
        return taken


@dataclass
class _Data:
    """Every table, with the indexes the engine's queries need."""

    ids: dict[str, int] = field(default_factory=dict)
    policies: dict[int, PolicyVersionRow] = field(default_factory=dict)
    policy_by_hash: dict[str, int] = field(default_factory=dict)
    escalations: dict[int, EscalationRow] = field(default_factory=dict)
    escalation_by_ref: dict[str, int] = field(default_factory=dict)
    escalations_by_created: SortedList = field(default_factory=SortedList)  # (created_at, id)
    timeline: list[TimelineEntry] = field(default_factory=list)
    timeline_of: dict[int | None, list[TimelineEntry]] = field(default_factory=dict)
    timers: dict[int, TimerRow] = field(default_factory=dict)
    timer_by_key: dict[str, int] = field(default_factory=dict)
    timers_of: dict[int | None, list[int]] = field(default_factory=dict)  # by escalation
    # pending timers nobody holds, in due order; and pending ones under a lease
    timers_free: _DueQueue = field(init=False)
    timers_leased: dict[int, TimerRow] = field(default_factory=dict)
    outbox: dict[int, _Message] = field(default_factory=dict)
    outbox_by_key: dict[str, int] = field(default_factory=dict)
    outbox_free: _DueQueue = field(init=False)
    outbox_leased: dict[int, _Message] = field(default_factory=dict)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    deliveries_of: dict[int | None, list[DeliveryRow]] = field(default_factory=dict)
    deliveries_by_message: dict[int, list[DeliveryRow]] = field(default_factory=dict)
    activity: list[tuple[str, str, datetime, int]] = field(default_factory=list)
    alert_keys: dict[str, int] = field(default_factory=dict)
    groups: dict[str, SortedList] = field(default_factory=dict)  # key -> (created_at, id)
    actions_done: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    users: dict[str, UserRow] = field(default_factory=dict)  # by e-mail
    api_keys: dict[str, ApiKeyRow] = field(default_factory=dict)  # by name
    api_key_by_hash: dict[str, str] = field(default_factory=dict)
    audit: list[AuditRow] = field(default_factory=list)
    audit_head: dict[int, AuditHead] = field(default_factory=dict)  # {1: head}
    overrides: dict[int, OverrideRow] = field(default_factory=dict)
    activations: list[int] = field(default_factory=list)  # policy version ids, oldest first

    def __post_init__(self) -> None:
        self.timers_free = _DueQueue(self._free_timer_due)
        self.outbox_free = _DueQueue(self._free_message_due)

    def _free_timer_due(self, tid: int) -> datetime | None:
        row = self.timers.get(tid)
        if row is None or row.state is not _PENDING or row.lease_until is not None:
            return None
        return row.due_at

    def _free_message_due(self, mid: int) -> datetime | None:
        row = self.outbox.get(mid)
        if row is None or row.message.state is not _OUT_PENDING or row.lease_until is not None:
            return None
        return row.message.available_at

    def next_id(self, table: str) -> int:
        n = self.ids.get(table, 0) + 1
        self.ids[table] = n
        return n


@dataclass(frozen=True, slots=True)
class _Message:
    """An outbox row: the message and who holds it until when."""

    message: OutboxMessage
    claimed_by: str | None = None
    lease_until: datetime | None = None


class _Tx:
    """The undo log of one unit of work."""

    def __init__(self, data: _Data) -> None:
        self.data = data
        self.undo: list[Callable[[], None]] = []

    def rollback_to(self, mark: int) -> None:
        while len(self.undo) > mark:
            self.undo.pop()()

    # ---- changes that know how to undo themselves

    def put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if key in table:
            old = table[key]
            self.undo.append(lambda: table.__setitem__(key, old))
        else:
            self.undo.append(lambda: table.pop(key, None))
        table[key] = value

    def drop(self, table: dict[Any, Any], key: Any) -> None:
        if key in table:
            old = table.pop(key)
            self.undo.append(lambda: table.__setitem__(key, old))

    def add_sorted(self, items: SortedList, value: Any) -> None:
        items.add(value)
        self.undo.append(lambda: items.remove(value))

    def append(self, items: list[Any], value: Any) -> None:
        items.append(value)
        self.undo.append(items.pop)

    def set_timer(self, new: TimerRow) -> None:
        d = self.data
        old = d.timers.get(new.id)
        _index_timer(d, old, new)
        d.timers[new.id] = new

        def undo() -> None:
            _index_timer(d, new, old)
            if old is None:
                d.timers.pop(new.id, None)
            else:
                d.timers[old.id] = old

        self.undo.append(undo)

    def set_message(self, new: _Message) -> None:
        d = self.data
        mid = new.message.id
        old = d.outbox.get(mid)
        _index_message(d, old, new)
        d.outbox[mid] = new

        def undo() -> None:
            _index_message(d, new, old)
            if old is None:
                d.outbox.pop(mid, None)
            else:
                d.outbox[mid] = old

        self.undo.append(undo)


def _index_timer(d: _Data, old: TimerRow | None, new: TimerRow | None) -> None:
    """Keep the leased map and the free queue in step with a timer that changed (free
    entries that go stale are left for the queue to drop)."""
    if old is not None and old.lease_until is not None:
        d.timers_leased.pop(old.id, None)
    if new is None or new.state is not _PENDING:
        return
    if new.lease_until is not None:
        d.timers_leased[new.id] = new
    elif old is None or old.lease_until is not None or old.state is not _PENDING:
        d.timers_free.push(new.due_at, new.id)


def _index_message(d: _Data, old: _Message | None, new: _Message | None) -> None:
    if old is not None and old.lease_until is not None:
        d.outbox_leased.pop(old.message.id, None)
    if new is None or new.message.state is not _OUT_PENDING:
        return
    if new.lease_until is not None:
        d.outbox_leased[new.message.id] = new
    else:
        assert new.message.available_at is not None
        d.outbox_free.push(new.message.available_at, new.message.id)


# --------------------------------------------------------------------------- repositories


class _MemoryRepository:
    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self._d = tx.data


class MemoryPolicyRepository(_MemoryRepository, PolicyRepository):
    def add(self, *, name: str, content: str, applied_by: str, at: datetime) -> PolicyVersionRow:
        digest = content_hash(content)
        found = self.by_hash(digest)
        if found is not None:
            return found
        row = PolicyVersionRow(
            id=self._d.next_id("policy_versions"),
            content_hash=digest,
            name=name,
            content=content,
            applied_by=applied_by,
            applied_at=_utc(at),
        )
        self._tx.put(self._d.policies, row.id, row)
        self._tx.put(self._d.policy_by_hash, digest, row.id)
        return row

    def get(self, policy_version_id: int) -> PolicyVersionRow | None:
        return self._d.policies.get(policy_version_id)

    def by_hash(self, digest: str) -> PolicyVersionRow | None:
        pid = self._d.policy_by_hash.get(digest)
        return None if pid is None else self._d.policies[pid]

    def latest(self, name: str | None = None) -> PolicyVersionRow | None:
        rows = self.history(name)
        return rows[-1] if rows else None

    def history(self, name: str | None = None) -> list[PolicyVersionRow]:
        rows = sorted(self._d.policies.values(), key=lambda r: r.id)
        return [r for r in rows if name is None or r.name == name]

    def activate(self, policy_version_id: int, *, by: str, at: datetime) -> None:
        if policy_version_id not in self._d.policies:
            raise IntegrityViolation(f"no policy version {policy_version_id}")
        self._tx.append(self._d.activations, policy_version_id)

    def active_id(self) -> int | None:
        return self._d.activations[-1] if self._d.activations else None


class MemoryEscalationRepository(_MemoryRepository, EscalationRepository):
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
        d = self._d
        if policy_version_id not in d.policies:
            raise IntegrityViolation(f"no policy version {policy_version_id}")
        if parent_id is not None and parent_id not in d.escalations:
            raise IntegrityViolation(f"no escalation {parent_id} to be the parent")
        if ref is not None and ref in d.escalation_by_ref:
            raise IntegrityViolation(f"escalation ref {ref!r} is taken")
        at = _utc(at)
        eid = d.next_id("escalations")
        row = EscalationRow(
            id=eid,
            ref=ref or f"ESC-{eid}",
            policy_version_id=policy_version_id,
            parent_id=parent_id,
            subject=subject,
            state=state,
            category=category,
            team=team,
            level=level,
            priority=priority,
            owner=owner,
            snapshot=_json(dict(snapshot)),
            customer=_json(dict(customer or {})),
            package=_json(dict(package or {})),
            created_at=at,
            updated_at=at,
            acknowledged_at=None,
            resolved_at=None,
            closed_at=None,
            version=1,
        )
        self._tx.put(d.escalations, eid, row)
        self._tx.put(d.escalation_by_ref, row.ref, eid)
        self._tx.add_sorted(d.escalations_by_created, (at, eid))
        return row

    def get(self, escalation_id: int) -> EscalationRow | None:
        return self._d.escalations.get(escalation_id)

    def get_by_ref(self, ref: str) -> EscalationRow | None:
        eid = self._d.escalation_by_ref.get(ref)
        return None if eid is None else self._d.escalations[eid]

    def lock(self, escalation_id: int) -> EscalationRow | None:
        return self.get(escalation_id)

    def update(
        self, escalation_id: int, *, expected_version: int, at: datetime, **changes: Any
    ) -> EscalationRow:
        unknown = set(changes) - ESCALATION_CHANGES
        if unknown:
            raise ValueError(f"cannot change escalation field(s): {', '.join(sorted(unknown))}")
        row = self._d.escalations.get(escalation_id)
        if row is None or row.version != expected_version:
            raise ConcurrentUpdate(
                f"escalation {escalation_id} changed since version {expected_version} was read"
            )
        for name in ("snapshot", "customer", "package"):
            if name in changes:
                changes[name] = _json(dict(changes[name]))
        for name in ("acknowledged_at", "resolved_at", "closed_at"):
            if name in changes:
                changes[name] = _opt_utc(changes[name])
        parent = changes.get("parent_id")
        if parent is not None and parent not in self._d.escalations:
            raise IntegrityViolation(f"no escalation {parent} to be the parent")
        new = evolve(row, **changes, updated_at=_utc(at), version=row.version + 1)
        self._tx.put(self._d.escalations, escalation_id, new)
        return new

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
        d = self._d
        wanted = None if states is None else {str(s) for s in states}
        in_teams = None if teams is None else set(teams)
        hidden, unless = set(hidden_categories), set(unless_teams)
        rows: Iterable[EscalationRow]
        if created_since is None:
            rows = d.escalations.values()
        else:
            since = (_utc(created_since), 0)
            rows = [d.escalations[eid] for _, eid in d.escalations_by_created.irange(since)]
        found = []
        for row in rows:
            if (
                (wanted is None or row.state in wanted)
                and (team is None or row.team == team)
                and (parent_id is None or row.parent_id == parent_id)
                and (category is None or row.category == category)
                and (not top_level or row.parent_id is None)
                and (before_id is None or row.id < before_id)
                and (in_teams is None or row.team in in_teams)
                and (priority is None or row.priority == priority)
                and (row.category not in hidden or row.team in unless)
            ):
                found.append(row)
        found.sort(key=lambda r: r.id, reverse=True)
        return found[offset : offset + limit]

    def count_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self._d.escalations.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts


class MemoryTimelineRepository(_MemoryRepository, TimelineRepository):
    def append(
        self,
        escalation_id: int | None,
        *,
        at: datetime,
        actor: str,
        kind: str,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> TimelineEntry:
        d = self._d
        if escalation_id is not None and escalation_id not in d.escalations:
            raise IntegrityViolation(f"no escalation {escalation_id} for a timeline entry")
        entry = TimelineEntry(
            id=d.next_id("timeline"),
            escalation_id=escalation_id,
            at=_utc(at),
            actor=actor,
            kind=str(kind),
            reason=reason,
            data=_json(dict(data or {})),
        )
        self._tx.append(d.timeline, entry)
        of = d.timeline_of.get(escalation_id)
        if of is None:
            self._tx.put(d.timeline_of, escalation_id, [entry])
        else:
            self._tx.append(of, entry)
        return entry

    def for_escalation(self, escalation_id: int) -> list[TimelineEntry]:
        return list(self._d.timeline_of.get(escalation_id, ()))

    def after(self, after_id: int = 0, limit: int = 1000) -> list[TimelineEntry]:
        entries = self._d.timeline
        # ids grow along the list: find the first above ``after_id`` by bisection
        lo, hi = 0, len(entries)
        while lo < hi:
            mid = (lo + hi) // 2
            if entries[mid].id > after_id:
                hi = mid
            else:
                lo = mid + 1
        return entries[lo : lo + limit]


class MemoryTimerRepository(_MemoryRepository, TimerRepository):
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
        due_at = _utc(due_at)
        created_at = _opt_utc(created_at)
        if key in self._d.timer_by_key:
            return False
        if escalation_id is not None and escalation_id not in self._d.escalations:
            raise IntegrityViolation(f"no escalation {escalation_id} for timer {key!r}")
        row = TimerRow(
            id=self._d.next_id("timers"),
            escalation_id=escalation_id,
            kind=kind,
            due_at=due_at,
            key=key,
            payload=_json(dict(payload or {})),
            state=TimerState.pending,
            created_at=created_at,
        )
        self._tx.set_timer(row)
        self._tx.put(self._d.timer_by_key, key, row.id)
        of = self._d.timers_of.get(escalation_id)
        if of is None:
            self._tx.put(self._d.timers_of, escalation_id, [row.id])
        else:
            self._tx.append(of, row.id)
        return True

    def schedule_many(
        self, timers: Sequence[NewTimer], *, created_at: datetime | None = None
    ) -> None:
        for n in timers:
            self.schedule(
                n.kind,
                n.due_at,
                n.key,
                n.payload,
                escalation_id=n.escalation_id,
                created_at=created_at,
            )

    def get(self, key: str) -> TimerRow | None:
        tid = self._d.timer_by_key.get(key)
        return None if tid is None else self._d.timers[tid]

    def cancel(self, key: str) -> bool:
        row = self.get(key)
        if row is None or row.state is not _PENDING:
            return False
        self._tx.set_timer(evolve(row, state=TimerState.cancelled))
        return True

    def cancel_for_escalation(self, escalation_id: int, kinds: Iterable[str] | None = None) -> int:
        wanted = None if kinds is None else set(kinds)
        n = 0
        for tid in self._d.timers_of.get(escalation_id, ()):
            row = self._d.timers[tid]
            if row.state is _PENDING and (wanted is None or row.kind in wanted):
                self._tx.set_timer(evolve(row, state=TimerState.cancelled))
                n += 1
        return n

    def find(
        self,
        *,
        escalation_id: int | None = None,
        states: Iterable[str] | None = (TimerState.pending.value,),
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[TimerRow]:
        wanted = None if states is None else {str(s) for s in states}
        rows = (
            self._pending()
            if wanted == {TimerState.pending.value}
            else list(self._d.timers.values())
        )
        found = [
            r
            for r in rows
            if (escalation_id is None or r.escalation_id == escalation_id)
            and (wanted is None or r.state.value in wanted)
            and (kind is None or r.kind == kind)
        ]
        found.sort(key=lambda r: (r.due_at, r.id))
        return found[:limit]

    def next_due(self, kinds: Iterable[str] | None = None) -> datetime | None:
        d = self._d
        wanted = None if kinds is None else set(kinds)
        first = d.timers_free.first(lambda tid: wanted is None or d.timers[tid].kind in wanted)
        candidates = [first] if first is not None else []
        for row in d.timers_leased.values():
            if wanted is None or row.kind in wanted:
                assert row.lease_until is not None
                candidates.append(max(row.lease_until, row.due_at))
        return min(candidates) if candidates else None

    def claim(
        self,
        *,
        kinds: Iterable[str],
        now: datetime,
        limit: int,
        worker: str,
        lease_until: datetime,
    ) -> list[TimerRow]:
        d = self._d
        now, lease_until = _utc(now), _utc(lease_until)
        wanted = set(kinds)
        taken = d.timers_free.take(now, limit, lambda tid: d.timers[tid].kind in wanted)
        picked = [d.timers[tid] for _, tid in taken]
        for row in d.timers_leased.values():
            lease = row.lease_until
            if row.kind in wanted and row.due_at <= now and lease is not None and lease <= now:
                picked.append(row)
        picked.sort(key=lambda r: (r.due_at, r.id))
        for row in picked[limit:]:
            if row.lease_until is None:
                d.timers_free.push(row.due_at, row.id)  # not claimed after all
        claimed = []
        for row in picked[:limit]:
            new = evolve(row, claimed_by=worker, lease_until=lease_until, attempts=row.attempts + 1)
            self._tx.set_timer(new)
            claimed.append(new)
        return claimed

    def finish(self, fired: Sequence[tuple[int, bool]], *, now: datetime) -> None:
        now = _utc(now)
        for timer_id, late in fired:
            row = self._d.timers.get(timer_id)
            if row is not None and row.state is _PENDING:
                self._tx.set_timer(
                    evolve(
                        row,
                        state=TimerState.done,
                        fired_at=now,
                        late=bool(late),
                        lease_until=None,
                        last_error=None,
                    )
                )

    def fail(self, timer_id: int, *, error: str, retry_at: datetime | None) -> None:
        row = self._d.timers.get(timer_id)
        if row is None or row.state is not _PENDING:
            return
        if retry_at is None:
            new = evolve(
                row,
                last_error=error[:4000],
                claimed_by=None,
                state=TimerState.failed,
                lease_until=None,
            )
        else:
            new = evolve(row, last_error=error[:4000], claimed_by=None, lease_until=_utc(retry_at))
        self._tx.set_timer(new)

    def _pending(self) -> list[TimerRow]:
        d = self._d
        free = [d.timers[tid] for _, tid in d.timers_free.entries()]
        return free + list(d.timers_leased.values())


class MemoryOutboxRepository(_MemoryRepository, OutboxRepository):
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
        at = _utc(at)
        if key in self._d.outbox_by_key:
            return False
        message = OutboxMessage(
            id=self._d.next_id("outbox"),
            key=key,
            escalation_id=escalation_id,
            channel=str(channel),
            recipient=recipient,
            audience=str(audience),
            template=template,
            payload=_json(dict(payload)),
            state=OutboxState.pending,
            created_at=at,
            available_at=at,
            attempts=0,
        )
        self._tx.set_message(_Message(message))
        self._tx.put(self._d.outbox_by_key, key, message.id)
        _log_delivery(self._tx, NewDelivery(message, DeliveryEvent.queued, at))
        return True

    def get(self, key: str) -> OutboxMessage | None:
        mid = self._d.outbox_by_key.get(key)
        return None if mid is None else self._d.outbox[mid].message

    def find(
        self,
        *,
        escalation_id: int | None = None,
        states: Iterable[str] | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OutboxMessage]:
        wanted = None if states is None else {str(s) for s in states}
        found = []
        for mid in sorted(self._d.outbox):
            m = self._d.outbox[mid].message
            if (
                m.id > after_id
                and (escalation_id is None or m.escalation_id == escalation_id)
                and (wanted is None or m.state.value in wanted)
            ):
                found.append(m)
                if len(found) >= limit:
                    break
        return found

    def next_due(self) -> datetime | None:
        d = self._d
        first = d.outbox_free.first(lambda mid: True)
        candidates = [first] if first is not None else []
        for row in d.outbox_leased.values():
            available = row.message.available_at
            assert row.lease_until is not None and available is not None
            candidates.append(row.lease_until if row.lease_until > available else available)
        return min(candidates) if candidates else None

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        worker: str,
        lease_until: datetime,
        channels: Iterable[str] | None = None,
    ) -> list[OutboxMessage]:
        d = self._d
        now, lease_until = _utc(now), _utc(lease_until)
        wanted = None if channels is None else {str(c) for c in channels}
        taken = d.outbox_free.take(
            now, limit, lambda mid: wanted is None or d.outbox[mid].message.channel in wanted
        )
        picked = [d.outbox[mid] for _, mid in taken]
        for row in d.outbox_leased.values():
            m = row.message
            if (
                (wanted is None or m.channel in wanted)
                and m.available_at is not None
                and m.available_at <= now
                and row.lease_until is not None
                and row.lease_until <= now
            ):
                picked.append(row)
        picked.sort(key=lambda r: (r.message.available_at, r.message.id))
        for row in picked[limit:]:
            if row.lease_until is None:
                assert row.message.available_at is not None
                d.outbox_free.push(row.message.available_at, row.message.id)
        claimed = []
        for row in picked[:limit]:
            message = evolve(row.message, attempts=row.message.attempts + 1)
            self._tx.set_message(_Message(message, claimed_by=worker, lease_until=lease_until))
            claimed.append(message)
        return sorted(claimed, key=lambda m: m.id)

    def mark_sent(self, ids: Sequence[int], *, at: datetime) -> None:
        at = _utc(at)
        for mid in ids:
            row = self._d.outbox.get(mid)
            if row is not None and row.message.state is _OUT_PENDING:
                message = evolve(row.message, state=OutboxState.sent, sent_at=at)
                self._tx.set_message(_Message(message, claimed_by=row.claimed_by))

    def cancel(self, ids: Sequence[int]) -> None:
        for mid in ids:
            row = self._d.outbox.get(mid)
            if row is not None and row.message.state is _OUT_PENDING:
                self._tx.set_message(_Message(evolve(row.message, state=OutboxState.cancelled)))

    def fail(self, message_id: int, *, error: str, retry_at: datetime | None) -> None:
        row = self._d.outbox.get(message_id)
        if row is None or row.message.state is not _OUT_PENDING:
            return
        if retry_at is None:
            message = evolve(row.message, last_error=error[:4000], state=OutboxState.failed)
            self._tx.set_message(_Message(message))
        else:
            retry_at = _utc(retry_at)
            message = evolve(row.message, last_error=error[:4000], available_at=retry_at)
            self._tx.set_message(_Message(message, lease_until=retry_at))


def _log_delivery(tx: _Tx, e: NewDelivery) -> None:
    d = tx.data
    m = e.message
    row = DeliveryRow(
        id=d.next_id("deliveries"),
        message_id=m.id,
        key=m.key,
        escalation_id=m.escalation_id,
        channel=m.channel,
        recipient=m.recipient,
        event=e.event,
        at=_utc(e.at),
        attempt=m.attempts,
        instance=e.instance,
        error=None if e.error is None else e.error[:4000],
        retry_at=None if e.retry_at is None else _utc(e.retry_at),
    )
    tx.append(d.deliveries, row)
    tx.append(d.deliveries_of.setdefault(m.escalation_id, []), row)
    tx.append(d.deliveries_by_message.setdefault(m.id, []), row)


class MemoryDeliveryRepository(_MemoryRepository, DeliveryRepository):
    def record_many(self, events: Sequence[NewDelivery]) -> None:
        for e in events:
            _log_delivery(self._tx, e)

    def for_escalation(self, escalation_id: int, *, limit: int = 10_000) -> list[DeliveryRow]:
        return list(self._d.deliveries_of.get(escalation_id, [])[:limit])

    def for_message(self, key: str) -> list[DeliveryRow]:
        mid = self._d.outbox_by_key.get(key)
        return [] if mid is None else list(self._d.deliveries_by_message.get(mid, []))


class MemoryActivityRepository(_MemoryRepository, ActivityRepository):
    def record(self, *, actor: str, action: str, at: datetime, count: int = 1) -> None:
        if count < 1:
            raise ValueError(f"activity count must be at least 1, got {count}")
        self._tx.append(self._d.activity, (actor, action, _utc(at), count))

    def _rows(
        self, action: str, since: datetime, until: datetime
    ) -> Iterator[tuple[str, datetime, int]]:
        since, until = _utc(since), _utc(until)
        for actor, act, at, count in self._d.activity:
            if act == action and since <= at < until:
                yield actor, at, count

    def total(
        self, *, action: str, since: datetime, until: datetime, actor: str | None = None
    ) -> int:
        return sum(n for who, _, n in self._rows(action, since, until) if actor in (None, who))

    def by_actor(
        self, *, action: str, since: datetime, until: datetime, more_than: int = 0
    ) -> dict[str, int]:
        totals: dict[str, int] = {}
        for who, _, n in self._rows(action, since, until):
            totals[who] = totals.get(who, 0) + n
        return {who: n for who, n in totals.items() if n > more_than}

    def by_day(
        self, *, actor: str, action: str, since: datetime, until: datetime, tz: tzinfo = UTC
    ) -> dict[date, int]:
        days: dict[date, int] = {}
        for who, at, n in self._rows(action, since, until):
            if who == actor:
                day = at.astimezone(tz).date()
                days[day] = days.get(day, 0) + n
        return days


class MemoryAlertKeyRepository(_MemoryRepository, AlertKeyRepository):
    def get(self, key: str) -> int | None:
        return self._d.alert_keys.get(key)

    def escalation(self, key: str) -> EscalationRow | None:
        eid = self._d.alert_keys.get(key)
        return None if eid is None else self._d.escalations.get(eid)

    def bind(self, key: str, escalation_id: int, *, at: datetime) -> bool:
        _utc(at)
        if key in self._d.alert_keys:
            return False
        self._tx.put(self._d.alert_keys, key, escalation_id)
        return True

    def release(self, key: str) -> bool:
        if key not in self._d.alert_keys:
            return False
        self._tx.drop(self._d.alert_keys, key)
        return True


class MemoryKeyLocks(_MemoryRepository, KeyLocks):
    """Nothing to wait for: one unit of work runs at a time (the store's lock)."""

    def acquire(self, *names: str) -> None:
        return None


class MemoryGroupRepository(_MemoryRepository, GroupRepository):
    def add(self, escalation_id: int, keys: Sequence[str], *, at: datetime) -> None:
        _utc(at)
        if escalation_id not in self._d.escalations:
            raise IntegrityViolation(f"no escalation {escalation_id} to group")
        for key in keys:
            members = self._d.groups.get(key)
            if members is None:
                self._tx.put(self._d.groups, key, SortedList())
                members = self._d.groups[key]
            self._tx.add_sorted(members, (at, escalation_id))

    def active_members(self, key: str, *, since: datetime) -> list[EscalationRow]:
        members = self._d.groups.get(key)
        if not members:
            return []
        found = []
        for _, escalation_id in members.irange((_utc(since), -1)):
            e = self._d.escalations[escalation_id]
            if e.parent_id is None and e.state in _ACTIVE:
                found.append(e)
        return sorted(found, key=lambda e: e.id)


class MemoryActionLedger(_MemoryRepository, ActionLedger):
    def record(self, key: str, *, worker: str, at: datetime) -> bool:
        if key in self._d.actions_done:
            return False
        self._tx.put(self._d.actions_done, key, (_utc(at), worker))
        return True

    def record_many(self, keys: Sequence[str], *, worker: str, at: datetime) -> set[str]:
        return {key for key in keys if self.record(key, worker=worker, at=at)}

    def is_done(self, key: str) -> bool:
        return key in self._d.actions_done


class MemoryUserRepository(_MemoryRepository, UserRepository):
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
        email = email.lower()
        if email in self._d.users:
            return None
        row = UserRow(
            id=self._d.next_id("users"),
            email=email,
            role=role,
            teams=list(teams),
            password_hash=password_hash,
            person=person,
            created_at=_utc(at),
        )
        self._tx.put(self._d.users, email, row)
        return row

    def get_by_email(self, email: str) -> UserRow | None:
        return self._d.users.get(email.lower())

    def list_all(self) -> list[UserRow]:
        return sorted(self._d.users.values(), key=lambda r: r.id)

    def update(self, email: str, **changes: Any) -> UserRow | None:
        unknown = set(changes) - USER_CHANGES
        if unknown:
            raise ValueError(f"cannot change user field(s): {', '.join(sorted(unknown))}")
        row = self.get_by_email(email)
        if row is None:
            return None
        if "teams" in changes:
            changes["teams"] = list(changes["teams"])
        if changes.get("disabled_at") is not None:
            changes["disabled_at"] = _utc(changes["disabled_at"])
        new = evolve(row, **changes)
        self._tx.put(self._d.users, row.email, new)
        return new


class MemoryApiKeyRepository(_MemoryRepository, ApiKeyRepository):
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
        d = self._d
        if name in d.api_keys or secret_hash in d.api_key_by_hash:
            return None
        row = ApiKeyRow(
            id=d.next_id("api_keys"),
            name=name,
            secret_hash=secret_hash,
            scopes=list(scopes),
            teams=list(teams),
            created_by=created_by,
            created_at=_utc(at),
        )
        self._tx.put(d.api_keys, name, row)
        self._tx.put(d.api_key_by_hash, secret_hash, name)
        return row

    def get(self, name: str) -> ApiKeyRow | None:
        return self._d.api_keys.get(name)

    def by_hash(self, secret_hash: str) -> ApiKeyRow | None:
        name = self._d.api_key_by_hash.get(secret_hash)
        return None if name is None else self._d.api_keys[name]

    def list_all(self) -> list[ApiKeyRow]:
        return sorted(self._d.api_keys.values(), key=lambda r: r.id)

    def revoke(self, name: str, *, at: datetime) -> ApiKeyRow | None:
        row = self._d.api_keys.get(name)
        if row is None or row.revoked_at is not None:
            return row
        new = evolve(row, revoked_at=_utc(at))
        self._tx.put(self._d.api_keys, name, new)
        return new

    def touch(self, key_id: int, *, at: datetime) -> None:
        for row in self._d.api_keys.values():
            if row.id == key_id:
                self._tx.put(self._d.api_keys, row.name, evolve(row, last_used_at=_utc(at)))
                return


class MemoryAuditRepository(_MemoryRepository, AuditRepository):
    def append(self, entry: NewAuditEntry) -> AuditRow:
        head = self._d.audit_head.get(1) or AuditHead(0, 0, GENESIS)
        new_id = head.last_id + 1
        stored = NewAuditEntry(
            at=_utc(entry.at),
            actor=entry.actor[:320],
            actor_kind=entry.actor_kind,
            action=entry.action,
            target=entry.target[:300],
            outcome=entry.outcome,
            address=entry.address,
            before=_json(entry.before),
            after=_json(entry.after),
            detail=entry.detail,
        )
        digest = entry_hash(new_id, stored, head.last_hash)
        row = AuditRow(
            id=new_id,
            at=stored.at,
            actor=stored.actor,
            actor_kind=stored.actor_kind,
            action=stored.action,
            target=stored.target,
            outcome=stored.outcome,
            address=stored.address,
            before=stored.before,
            after=stored.after,
            detail=stored.detail,
            prev_hash=head.last_hash,
            hash=digest,
        )
        self._tx.append(self._d.audit, row)
        self._tx.put(self._d.audit_head, 1, AuditHead(head.count + 1, new_id, digest))
        return row

    def entries(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRow]:
        return [r for r in self._d.audit if r.id > after_id][:limit]

    def head(self) -> AuditHead | None:
        return self._d.audit_head.get(1)


class MemoryOverrideRepository(_MemoryRepository, OverrideRepository):
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
    ) -> OverrideRow:
        row = OverrideRow(
            id=self._d.next_id("oncall_overrides"),
            schedule=schedule,
            person=person,
            replaces=replaces,
            start_at=_utc(start_at),
            end_at=_utc(end_at),
            reason=reason,
            created_by=created_by,
            created_at=_utc(created_at),
        )
        self._tx.put(self._d.overrides, row.id, row)
        return row

    def get(self, override_id: int) -> OverrideRow | None:
        return self._d.overrides.get(override_id)

    def for_schedule(
        self, schedule: str, *, ending_after: datetime | None = None
    ) -> list[OverrideRow]:
        after = _utc(ending_after) if ending_after is not None else None
        return [
            r
            for _, r in sorted(self._d.overrides.items())
            if r.schedule == schedule and (after is None or r.end_at > after)
        ]

    def delete(self, override_id: int) -> OverrideRow | None:
        row = self._d.overrides.get(override_id)
        self._tx.drop(self._d.overrides, override_id)
        return row


# --------------------------------------------------------------------------- unit of work


class MemoryUnitOfWork(UnitOfWork):
    """One transaction over the store's data: undone unless committed."""

    def __init__(self, data: _Data) -> None:
        self._txn = _Tx(data)
        self.dialect = "memory"
        self.policies = MemoryPolicyRepository(self._txn)
        self.escalations = MemoryEscalationRepository(self._txn)
        self.timeline = MemoryTimelineRepository(self._txn)
        self.timers = MemoryTimerRepository(self._txn)
        self.outbox = MemoryOutboxRepository(self._txn)
        self.deliveries = MemoryDeliveryRepository(self._txn)
        self.activity = MemoryActivityRepository(self._txn)
        self.alert_keys = MemoryAlertKeyRepository(self._txn)
        self.actions = MemoryActionLedger(self._txn)
        self.locks = MemoryKeyLocks(self._txn)
        self.groups = MemoryGroupRepository(self._txn)
        self.users = MemoryUserRepository(self._txn)
        self.api_keys = MemoryApiKeyRepository(self._txn)
        self.audit = MemoryAuditRepository(self._txn)
        self.overrides = MemoryOverrideRepository(self._txn)

    def commit(self) -> None:
        self._txn.undo.clear()

    def rollback(self) -> None:
        self._txn.rollback_to(0)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        mark = len(self._txn.undo)
        try:
            yield
        except BaseException:
            self._txn.rollback_to(mark)
            raise


class _Unit(AbstractContextManager[UnitOfWork]):
    """One unit of work of a memory store: holds the store's lock, rolls back what was not
    committed, and hands the unit of work back for reuse (a class, not a generator: the
    engine opens tens of thousands of them in a simulated day)."""

    __slots__ = ("store", "uow")

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def __enter__(self) -> UnitOfWork:
        store = self.store
        store._lock.acquire()
        try:
            self.uow = store._idle.pop() if store._idle else MemoryUnitOfWork(store._data)
        except BaseException:
            store._lock.release()
            raise
        return self.uow

    def __exit__(self, *exc: object) -> None:
        store, uow = self.store, self.uow
        try:
            uow.rollback()
            if uow._txn.data is store._data:
                store._idle.append(uow)
        finally:
            store._lock.release()


class MemoryStore(Store):
    """A store that lives in this process and ends with it (``simulate``, fast tests)."""

    def __init__(self) -> None:
        self._data = _Data()
        self._lock = threading.RLock()
        self._idle: list[MemoryUnitOfWork] = []  # finished units of work, ready for reuse

    @property
    def dialect(self) -> str:
        return "memory"

    @property
    def engine(self) -> Any:
        raise AttributeError("the memory store has no SQL engine")

    def unit_of_work(self, *, readonly: bool = False) -> AbstractContextManager[UnitOfWork]:
        return _Unit(self)

    def upgrade(self, revision: str = "head") -> None:
        """Nothing to migrate: the structures are always current."""

    def current_revision(self) -> str | None:
        return "memory"

    def dispose(self) -> None:
        self._data = _Data()
        self._idle.clear()

    def describe(self) -> str:
        return MEMORY_URL
