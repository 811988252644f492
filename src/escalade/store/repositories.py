"""The SQL repositories: the only code that writes SQL for the tables in ``tables.py``.

Each implements its interface in ``interface.py`` (where the methods are documented).

Each repository works on the connection of one unit of work; nothing here commits.
Inserts that carry an idempotency key use ``INSERT … ON CONFLICT DO NOTHING`` so that
doing the same thing twice is a no-op on both SQLite and PostgreSQL.

The timeline has no update or delete method on purpose: it is append-only (and the
database refuses UPDATE/DELETE on it with a trigger).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    CursorResult,
    Dialect,
    Executable,
    Row,
    Select,
    Table,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.util.typing import TupleAny, Unpack

from escalade.store import interface as iface
from escalade.store import tables as t
from escalade.store.auditchain import GENESIS, AuditHead, entry_hash
from escalade.store.interface import ESCALATION_CHANGES, ConcurrentUpdate, NewTimer, content_hash
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
)
from escalade.store.types import UTCDateTime


class Executor(Protocol):
    """What a repository needs of its unit of work's connection."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[Unpack[TupleAny]]: ...


class _Repository:
    """Works on the connection of one unit of work; nothing here commits."""

    def __init__(self, conn: Executor) -> None:
        self._conn = conn
        self._dialect = conn.dialect.name

    def _insert(self, table: Table) -> Any:
        """A dialect ``INSERT`` that knows ``on_conflict_do_nothing``."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


# --------------------------------------------------------------------------- policies


class SqlPolicyRepository(_Repository, iface.PolicyRepository):
    """Every policy text ever applied, once per distinct content."""

    def add(self, *, name: str, content: str, applied_by: str, at: datetime) -> PolicyVersionRow:
        """Record a policy text; applying identical content again returns the first record."""
        digest = content_hash(content)
        self._conn.execute(
            self._insert(t.policy_versions)
            .values(
                content_hash=digest,
                name=name,
                content=content,
                applied_by=applied_by,
                applied_at=at,
            )
            .on_conflict_do_nothing(index_elements=["content_hash"])
        )
        found = self.by_hash(digest)
        assert found is not None
        return found

    def get(self, policy_version_id: int) -> PolicyVersionRow | None:
        return self._one(
            select(t.policy_versions).where(t.policy_versions.c.id == policy_version_id)
        )

    def by_hash(self, digest: str) -> PolicyVersionRow | None:
        return self._one(
            select(t.policy_versions).where(t.policy_versions.c.content_hash == digest)
        )

    def latest(self, name: str | None = None) -> PolicyVersionRow | None:
        """The most recently applied version (of the named policy, if given)."""
        q = select(t.policy_versions).order_by(t.policy_versions.c.id.desc()).limit(1)
        if name is not None:
            q = q.where(t.policy_versions.c.name == name)
        return self._one(q)

    def history(self, name: str | None = None) -> list[PolicyVersionRow]:
        q = select(t.policy_versions).order_by(t.policy_versions.c.id)
        if name is not None:
            q = q.where(t.policy_versions.c.name == name)
        return [PolicyVersionRow(**r._mapping) for r in self._conn.execute(q)]

    def activate(self, policy_version_id: int, *, by: str, at: datetime) -> None:
        self._conn.execute(
            t.policy_activations.insert().values(
                policy_version_id=policy_version_id, activated_by=by[:320], activated_at=at
            )
        )

    def active_id(self) -> int | None:
        c = t.policy_activations.c
        q = select(c.policy_version_id).order_by(c.id.desc()).limit(1)
        value = self._conn.execute(q).scalar()
        return int(value) if value is not None else None

    def _one(self, q: Select[Any]) -> PolicyVersionRow | None:
        row = self._conn.execute(q).first()
        return PolicyVersionRow(**row._mapping) if row else None


# --------------------------------------------------------------------------- escalations


class SqlEscalationRepository(_Repository, iface.EscalationRepository):
    """Escalations at run time. ``snapshot`` is written once, at the start: the decision,
    the resolved ladder and targets, so a later policy change never alters it."""

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
        """Insert an escalation. Without ``ref`` it gets ``ESC-<id>``. Both statements are
        built once (a statement built per call costs more than the database's work)."""
        row = self._conn.execute(
            _ESC_INSERT,
            {
                "ref": ref or f"tmp-{uuid.uuid4().hex}",
                "policy_version_id": policy_version_id,
                "parent_id": parent_id,
                "subject": subject,
                "state": state,
                "category": category,
                "team": team,
                "level": level,
                "priority": priority,
                "owner": owner,
                "snapshot": dict(snapshot),
                "customer": dict(customer or {}),
                "package": dict(package or {}),
                "created_at": at,
                "updated_at": at,
                "version": 1,
            },
        ).one()
        if ref is None:
            row = self._conn.execute(
                _ESC_SET_REF, {"escalation_id": row.id, "new_ref": f"ESC-{row.id}"}
            ).one()
        return _escalation(row)

    def get(self, escalation_id: int) -> EscalationRow | None:
        return self._one(_ESC_BY_ID, {"id": escalation_id})

    def get_many(self, escalation_ids: Iterable[int]) -> dict[int, EscalationRow]:
        ids = sorted(set(escalation_ids))
        if not ids:
            return {}
        rows = self._conn.execute(_ESC_BY_IDS, {"ids": ids})
        return {r.id: _escalation(r) for r in rows}

    def get_by_ref(self, ref: str) -> EscalationRow | None:
        return self._one(_ESC_BY_REF, {"ref": ref})

    def lock(self, escalation_id: int) -> EscalationRow | None:
        """Read and lock the row until commit (``FOR UPDATE`` on PostgreSQL; on SQLite the
        unit of work already holds the write lock)."""
        return self._one(_ESC_LOCK, {"id": escalation_id})

    def update(
        self, escalation_id: int, *, expected_version: int, at: datetime, **changes: Any
    ) -> EscalationRow:
        """Change fields if nobody else did since ``expected_version`` was read; bumps the
        version and ``updated_at``. Raises ``ConcurrentUpdate`` otherwise."""
        unknown = set(changes) - ESCALATION_CHANGES
        if unknown:
            raise ValueError(f"cannot change escalation field(s): {', '.join(sorted(unknown))}")
        row = self._conn.execute(
            t.escalations.update()
            .where(
                t.escalations.c.id == escalation_id,
                t.escalations.c.version == expected_version,
            )
            .values(**changes, updated_at=at, version=t.escalations.c.version + 1)
            .returning(*t.escalations.c)
        ).first()
        if row is None:
            raise ConcurrentUpdate(
                f"escalation {escalation_id} changed since version {expected_version} was read"
            )
        return _escalation(row)

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
        """Newest first, filtered (``top_level``: not linked to a parent incident)."""
        c = t.escalations.c
        q = select(t.escalations).order_by(c.id.desc()).limit(limit).offset(offset)
        if states is not None:
            q = q.where(c.state.in_(list(states)))
        if team is not None:
            q = q.where(c.team == team)
        if parent_id is not None:
            q = q.where(c.parent_id == parent_id)
        if category is not None:
            q = q.where(c.category == category)
        if created_since is not None:
            q = q.where(c.created_at >= created_since)
        if top_level:
            q = q.where(c.parent_id.is_(None))
        if before_id is not None:
            q = q.where(c.id < before_id)
        if teams is not None:
            q = q.where(c.team.in_(list(teams)))
        if priority is not None:
            q = q.where(c.priority == priority)
        if hidden_categories:
            shown = or_(c.category.is_(None), c.category.not_in(list(hidden_categories)))
            if unless_teams:
                shown = or_(shown, c.team.in_(list(unless_teams)))
            q = q.where(shown)
        return [_escalation(r) for r in self._conn.execute(q)]

    def count_by_state(self) -> dict[str, int]:
        q = select(t.escalations.c.state, func.count()).group_by(t.escalations.c.state)
        return {state: n for state, n in self._conn.execute(q)}

    def _one(self, q: Select[Any], params: dict[str, Any] | None = None) -> EscalationRow | None:
        row = self._conn.execute(q, params or {}).first()
        return _escalation(row) if row else None


def _escalation(row: Row[Any]) -> EscalationRow:
    return EscalationRow(**row._mapping)


# --------------------------------------------------------------------------- timeline


# Built once: the engine appends to the timeline in its hottest loop.
_TIMELINE_INSERT = t.timeline.insert().returning(*t.timeline.c)
# RETURNING makes SQLAlchemy send many rows as one multi-row INSERT on both databases
# ("insertmanyvalues"), not one statement per row
_TIMELINE_INSERT_MANY = t.timeline.insert().returning(t.timeline.c.id)


class SqlTimelineRepository(_Repository, iface.TimelineRepository):
    """Append-only record of everything that happened to an escalation."""

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
        row = self._conn.execute(
            _TIMELINE_INSERT,
            {
                "escalation_id": escalation_id,
                "at": at,
                "actor": actor,
                "kind": str(kind),
                "reason": reason,
                "data": dict(data or {}),
            },
        ).one()
        return TimelineEntry(**row._mapping)

    def append_many(self, entries: Sequence[iface.NewEntry]) -> None:
        """Append entries in this order: one multi-row statement."""
        if not entries:
            return
        self._conn.execute(
            _TIMELINE_INSERT_MANY,
            [
                {
                    "escalation_id": e.escalation_id,
                    "at": e.at,
                    "actor": e.actor,
                    "kind": str(e.kind),
                    "reason": e.reason,
                    "data": dict(e.data or {}),
                }
                for e in entries
            ],
        )

    def for_escalation(self, escalation_id: int) -> list[TimelineEntry]:
        """In the order things were recorded."""
        return [
            TimelineEntry(**r._mapping)
            for r in self._conn.execute(_TIMELINE_OF, {"escalation_id": escalation_id})
        ]

    def after(self, after_id: int = 0, limit: int = 1000) -> list[TimelineEntry]:
        """Entries with id above ``after_id``, in record order (to stream new entries)."""
        q = select(t.timeline).where(t.timeline.c.id > after_id).order_by(t.timeline.c.id)
        return [TimelineEntry(**r._mapping) for r in self._conn.execute(q.limit(limit))]


# --------------------------------------------------------------------------- timers


class SqlTimerRepository(_Repository, iface.TimerRepository):
    """Durable timers. A key is unique forever: scheduling it again is a no-op, even after
    the timer fired or was cancelled (put a generation or level in the key to re-arm)."""

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
        result = self._conn.execute(
            _timer_insert(self._dialect),
            {
                "escalation_id": escalation_id,
                "kind": kind,
                "due_at": due_at,
                "idempotency_key": key,
                "payload": dict(payload or {}),
                "state": TimerState.pending.value,
                "created_at": created_at,
                "attempts": 0,
                "late": False,
            },
        )
        return result.first() is not None

    def schedule_many(
        self, timers: Sequence[NewTimer], *, created_at: datetime | None = None
    ) -> None:
        """Bulk form of ``schedule`` (one executemany); existing keys are skipped."""
        if not timers:
            return
        self._conn.execute(
            _timer_insert(self._dialect),  # RETURNING: one multi-row INSERT
            [
                {
                    "escalation_id": n.escalation_id,
                    "kind": n.kind,
                    "due_at": n.due_at,
                    "idempotency_key": n.key,
                    "payload": dict(n.payload),
                    "state": TimerState.pending.value,
                    "created_at": created_at,
                    "attempts": 0,
                    "late": False,
                }
                for n in timers
            ],
        )

    def get(self, key: str) -> TimerRow | None:
        row = self._conn.execute(select(t.timers).where(t.timers.c.idempotency_key == key)).first()
        return _timer(row) if row else None

    def cancel(self, key: str) -> bool:
        """Cancel a pending timer; ``False`` if it was not pending."""
        result = self._conn.execute(
            t.timers.update()
            .where(
                t.timers.c.idempotency_key == key,
                t.timers.c.state == TimerState.pending.value,
            )
            .values(state=TimerState.cancelled.value)
        )
        return bool(result.rowcount)

    def cancel_for_escalation(self, escalation_id: int, kinds: Iterable[str] | None = None) -> int:
        """Cancel an escalation's pending timers (of the given kinds); returns how many."""
        q = t.timers.update().where(
            t.timers.c.escalation_id == escalation_id,
            t.timers.c.state == TimerState.pending.value,
        )
        if kinds is not None:
            q = q.where(t.timers.c.kind.in_(list(kinds)))
        return int(self._conn.execute(q.values(state=TimerState.cancelled.value)).rowcount)

    def find(
        self,
        *,
        escalation_id: int | None = None,
        states: Iterable[str] | None = (TimerState.pending.value,),
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[TimerRow]:
        """Timers in due order (pending ones by default)."""
        q = select(t.timers).order_by(t.timers.c.due_at, t.timers.c.id).limit(limit)
        if escalation_id is not None:
            q = q.where(t.timers.c.escalation_id == escalation_id)
        if states is not None:
            q = q.where(t.timers.c.state.in_([str(s) for s in states]))
        if kind is not None:
            q = q.where(t.timers.c.kind == kind)
        return [_timer(r) for r in self._conn.execute(q)]

    def next_due(self, kinds: Iterable[str] | None = None) -> datetime | None:
        """When the earliest pending timer becomes claimable: its due time, or the end of
        its lease if a worker holds it or backs off from it. ``simulate`` jumps to it."""
        if kinds is None:
            first = self._conn.execute(_TIMER_FIRST_FREE).scalar()
            lease_end = self._conn.execute(_TIMER_LEASE_END).scalar()
        else:
            params = {"kinds": list(kinds)}
            first = self._conn.execute(_TIMER_FIRST_FREE_KINDS, params).scalar()
            lease_end = self._conn.execute(_TIMER_LEASE_END_KINDS, params).scalar()
        candidates = [x for x in (first, lease_end) if x is not None]
        return min(candidates) if candidates else None

    # ---- used by the engine

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
        rows = self._conn.execute(
            _TIMER_CLAIM,
            {
                "kinds": list(kinds),
                "now": now,
                "lim": limit,
                "worker": worker,
                "lease_until": lease_until,
            },
        ).all()
        claimed = [_timer(r) for r in rows]
        claimed.sort(key=lambda timer: (timer.due_at, timer.id))
        return claimed

    def finish(self, fired: Sequence[tuple[int, bool]], *, now: datetime) -> None:
        """Mark claimed timers done: ``(id, late)`` pairs, one executemany."""
        if not fired:
            return
        self._conn.execute(
            _TIMER_FINISH,
            [{"timer_id": timer_id, "is_late": late, "now": now} for timer_id, late in fired],
        )

    def fail(self, timer_id: int, *, error: str, retry_at: datetime | None) -> None:
        """A handler failed: retry at ``retry_at``, or give up (state ``failed``) if None."""
        values: dict[str, Any] = {"last_error": error[:4000], "claimed_by": None}
        if retry_at is None:
            values.update(state=TimerState.failed.value, lease_until=None)
        else:
            values.update(lease_until=retry_at)
        self._conn.execute(
            t.timers.update()
            .where(t.timers.c.id == timer_id, t.timers.c.state == TimerState.pending.value)
            .values(**values)
        )


def _timer(row: Row[Any]) -> TimerRow:
    m = dict(row._mapping)
    m["key"] = m.pop("idempotency_key")
    m["state"] = TimerState(m["state"])
    return TimerRow(**m)


# --------------------------------------------------------------------------- outbox


class SqlOutboxRepository(_Repository, iface.OutboxRepository):
    """Messages to deliver, written in the same transaction as the change that causes them."""

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
        """Queue a message; ``False`` if a message with this key was already queued.
        The delivery log's ``queued`` row is written with it (on PostgreSQL in the same
        statement, so the log costs no extra round trip)."""
        values = {
            "idempotency_key": key,
            "escalation_id": escalation_id,
            "channel": str(channel),
            "recipient": recipient,
            "audience": str(audience),
            "template": template,
            "payload": dict(payload),
            "state": OutboxState.pending.value,
            "created_at": at,
            "available_at": at,
            "attempts": 0,
        }
        if self._dialect == "postgresql":
            return self._conn.execute(_PG_ENQUEUE_LOGGED, values).first() is not None
        row = self._conn.execute(_outbox_insert(self._dialect), values).first()
        if row is None:
            return False
        self._conn.execute(
            _DELIVERY_INSERT,
            {
                "message_id": row[0],
                "idempotency_key": key,
                "escalation_id": escalation_id,
                "channel": str(channel),
                "recipient": recipient,
                "event": DeliveryEvent.queued.value,
                "at": at,
                "attempt": 0,
                "instance": None,
                "error": None,
                "retry_at": None,
            },
        )
        return True

    def enqueue_many(self, messages: Sequence[iface.NewMessage]) -> int:
        """Queue messages in this order: one multi-row statement for the outbox and one for
        their ``queued`` log rows (one message on PostgreSQL: one statement for both)."""
        if not messages:
            return 0
        if len(messages) == 1:
            m = messages[0]
            return int(
                self.enqueue(
                    key=m.key,
                    channel=m.channel,
                    recipient=m.recipient,
                    audience=m.audience,
                    template=m.template,
                    payload=m.payload,
                    at=m.at,
                    escalation_id=m.escalation_id,
                )
            )
        rows = self._conn.execute(
            _outbox_insert_keys(self._dialect),
            [
                {
                    "idempotency_key": m.key,
                    "escalation_id": m.escalation_id,
                    "channel": str(m.channel),
                    "recipient": m.recipient,
                    "audience": str(m.audience),
                    "template": m.template,
                    "payload": dict(m.payload),
                    "state": OutboxState.pending.value,
                    "created_at": m.at,
                    "available_at": m.at,
                    "attempts": 0,
                }
                for m in messages
            ],
        ).all()
        ids = {key: message_id for message_id, key in rows}
        first = {m.key: m for m in reversed(messages)}  # a key given twice: its first
        logged = [
            {
                "message_id": ids[m.key],
                "idempotency_key": m.key,
                "escalation_id": m.escalation_id,
                "channel": str(m.channel),
                "recipient": m.recipient,
                "event": DeliveryEvent.queued.value,
                "at": m.at,
                "attempt": 0,
                "instance": None,
                "error": None,
                "retry_at": None,
            }
            for m in messages
            if m.key in ids and first[m.key] is m
        ]
        if logged:
            self._conn.execute(_DELIVERY_INSERT_MANY, logged)
        return len(logged)

    def get(self, key: str) -> OutboxMessage | None:
        row = self._conn.execute(select(t.outbox).where(t.outbox.c.idempotency_key == key)).first()
        return _message(row) if row else None

    def find(
        self,
        *,
        escalation_id: int | None = None,
        states: Iterable[str] | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OutboxMessage]:
        """In the order they were queued."""
        q = select(t.outbox).where(t.outbox.c.id > after_id).order_by(t.outbox.c.id).limit(limit)
        if escalation_id is not None:
            q = q.where(t.outbox.c.escalation_id == escalation_id)
        if states is not None:
            q = q.where(t.outbox.c.state.in_([str(s) for s in states]))
        return [_message(r) for r in self._conn.execute(q)]

    def next_due(self) -> datetime | None:
        """The first free message's time (an index walk) or the first lease to run out
        (only leased messages are read); built once, writes nothing."""
        first = self._conn.execute(_OUTBOX_FIRST_FREE).scalar()
        lease_end = self._conn.execute(_OUTBOX_LEASE_END).scalar()
        candidates = [x for x in (first, lease_end) if x is not None]
        return min(candidates) if candidates else None

    # ---- used by the engine

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        worker: str,
        lease_until: datetime,
        channels: Iterable[str] | None = None,
    ) -> list[OutboxMessage]:
        params: dict[str, Any] = {
            "now": now,
            "lim": limit,
            "worker": worker,
            "lease_until": lease_until,
        }
        if channels is None:
            rows = self._conn.execute(_OUTBOX_CLAIM, params).all()
        else:
            params["channels"] = list(channels)
            rows = self._conn.execute(_OUTBOX_CLAIM_CHANNELS, params).all()
        return sorted((_message(r) for r in rows), key=lambda m: m.id)

    def mark_sent(self, ids: Sequence[int], *, at: datetime) -> None:
        if ids:
            self._conn.execute(_OUTBOX_SENT, {"ids": list(ids), "at": at})

    def cancel(self, ids: Sequence[int]) -> None:
        if ids:
            self._conn.execute(_OUTBOX_CANCEL, {"ids": list(ids)})

    def fail(self, message_id: int, *, error: str, retry_at: datetime | None) -> None:
        """Delivery failed: try again at ``retry_at``, or give up (state ``failed``)."""
        values: dict[str, Any] = {"last_error": error[:4000], "claimed_by": None}
        if retry_at is None:
            values.update(state=OutboxState.failed.value, lease_until=None)
        else:
            values.update(lease_until=retry_at, available_at=retry_at)
        self._conn.execute(
            t.outbox.update()
            .where(t.outbox.c.id == message_id, t.outbox.c.state == OutboxState.pending.value)
            .values(**values)
        )


class SqlDeliveryRepository(_Repository, iface.DeliveryRepository):
    """The delivery log of outbox messages."""

    def record_many(self, events: Sequence[iface.NewDelivery]) -> None:
        if not events:
            return
        self._conn.execute(
            _DELIVERY_INSERT,
            [
                {
                    "message_id": e.message.id,
                    "idempotency_key": e.message.key,
                    "escalation_id": e.message.escalation_id,
                    "channel": e.message.channel,
                    "recipient": e.message.recipient,
                    "event": e.event.value,
                    "at": e.at,
                    "attempt": e.message.attempts,
                    "instance": e.instance,
                    "error": None if e.error is None else e.error[:4000],
                    "retry_at": e.retry_at,
                }
                for e in events
            ],
        )

    def for_escalation(self, escalation_id: int, *, limit: int = 10_000) -> list[DeliveryRow]:
        q = (
            select(t.deliveries)
            .where(t.deliveries.c.escalation_id == escalation_id)
            .order_by(t.deliveries.c.id)
            .limit(limit)
        )
        return [_delivery(r) for r in self._conn.execute(q)]

    def for_message(self, key: str) -> list[DeliveryRow]:
        message = select(t.outbox.c.id).where(t.outbox.c.idempotency_key == key)
        q = (
            select(t.deliveries)
            .where(t.deliveries.c.message_id == message.scalar_subquery())
            .order_by(t.deliveries.c.id)
        )
        return [_delivery(r) for r in self._conn.execute(q)]


def _delivery(row: Row[Any]) -> DeliveryRow:
    m = dict(row._mapping)
    m["key"] = m.pop("idempotency_key")
    m["event"] = DeliveryEvent(m["event"])
    return DeliveryRow(**m)


def _message(row: Row[Any]) -> OutboxMessage:
    m = dict(row._mapping)
    m["key"] = m.pop("idempotency_key")
    m["state"] = OutboxState(m["state"])
    for name in ("claimed_by", "lease_until"):
        m.pop(name)
    return OutboxMessage(**m)


# --------------------------------------------------------------------------- activity


class SqlActivityRepository(_Repository, iface.ActivityRepository):
    """Product activity that threshold triggers count (who did what, how many times)."""

    def record(self, *, actor: str, action: str, at: datetime, count: int = 1) -> None:
        if count < 1:
            raise ValueError(f"activity count must be at least 1, got {count}")
        self._conn.execute(
            t.activity.insert().values(actor=actor, action=action, at=at, count=count)
        )

    def total(
        self, *, action: str, since: datetime, until: datetime, actor: str | None = None
    ) -> int:
        """Sum of counts in ``[since, until)``, for one actor or everyone."""
        q = select(func.coalesce(func.sum(t.activity.c.count), 0)).where(
            t.activity.c.action == action, t.activity.c.at >= since, t.activity.c.at < until
        )
        if actor is not None:
            q = q.where(t.activity.c.actor == actor)
        return int(self._conn.execute(q).scalar_one())

    def by_actor(
        self, *, action: str, since: datetime, until: datetime, more_than: int = 0
    ) -> dict[str, int]:
        """Actors whose total in ``[since, until)`` is above ``more_than``."""
        total = func.sum(t.activity.c.count)
        q = (
            select(t.activity.c.actor, total)
            .where(t.activity.c.action == action, t.activity.c.at >= since, t.activity.c.at < until)
            .group_by(t.activity.c.actor)
            .having(total > more_than)
        )
        return {actor: int(n) for actor, n in self._conn.execute(q)}

    def by_day(
        self, *, actor: str, action: str, since: datetime, until: datetime, tz: tzinfo = UTC
    ) -> dict[date, int]:
        """Totals per local day (in ``tz``) in ``[since, until)``: for 'on several days'."""
        q = select(t.activity.c.at, t.activity.c.count).where(
            t.activity.c.actor == actor,
            t.activity.c.action == action,
            t.activity.c.at >= since,
            t.activity.c.at < until,
        )
        days: dict[date, int] = {}
        for at, n in self._conn.execute(q):
            day = at.astimezone(tz).date()
            days[day] = days.get(day, 0) + int(n)
        return days


# --------------------------------------------------------------------------- alert keys


class SqlAlertKeyRepository(_Repository, iface.AlertKeyRepository):
    """Deduplication: a monitoring alert key → the escalation it opened."""

    def get(self, key: str) -> int | None:
        value: int | None = self._conn.execute(_ALERT_KEY_GET, {"key": key}).scalar()
        return value

    def escalation(self, key: str) -> EscalationRow | None:
        """The escalation the key is mapped to: one indexed lookup (a join)."""
        row = self._conn.execute(_ESC_BY_ALERT_KEY, {"key": key}).first()
        return _escalation(row) if row else None

    def bind(self, key: str, escalation_id: int, *, at: datetime) -> bool:
        """Map the key to the escalation; ``False`` if the key is already mapped."""
        result = self._conn.execute(
            self._insert(t.alert_keys)
            .values(key=key, escalation_id=escalation_id, created_at=at)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(t.alert_keys.c.key)
        )
        return result.first() is not None

    def release(self, key: str) -> bool:
        """Forget the key (the alert resolved); the next firing opens a new escalation."""
        result = self._conn.execute(t.alert_keys.delete().where(t.alert_keys.c.key == key))
        return bool(result.rowcount)


class SqlKeyLocks(_Repository, iface.KeyLocks):
    """PostgreSQL: transaction-level advisory locks on a 64-bit hash of each name. SQLite
    needs none: every writing unit of work holds the database's one write lock
    (``BEGIN IMMEDIATE``) from its start."""

    def acquire(self, *names: str) -> None:
        if self._conn.dialect.name != "postgresql":
            return
        for name in sorted(set(names)):
            digest = hashlib.sha256(name.encode()).digest()[:8]
            self._conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": int.from_bytes(digest, "big", signed=True)},
            )


class SqlGroupRepository(_Repository, iface.GroupRepository):
    """Grouping keys of escalations (related-issue thresholds), indexed by key and time."""

    def add(self, escalation_id: int, keys: Sequence[str], *, at: datetime) -> None:
        if keys:
            self._conn.execute(
                t.escalation_groups.insert(),
                [{"key": k, "escalation_id": escalation_id, "created_at": at} for k in keys],
            )

    def active_members(self, key: str, *, since: datetime) -> list[EscalationRow]:
        rows = self._conn.execute(_GROUP_MEMBERS, {"key": key, "since": since})
        return [_escalation(row) for row in rows]


# --------------------------------------------------------------------------- actions done


class SqlActionLedger(_Repository, iface.ActionLedger):
    """The exactly-once ledger. Record an action's key in the same transaction as the
    action: if the key is already there, the action was done and must be skipped."""

    def record(self, key: str, *, worker: str, at: datetime) -> bool:
        """``True`` if the key is new (go ahead), ``False`` if the action was done."""
        result = self._conn.execute(
            self._insert(t.actions_done)
            .values(idempotency_key=key, done_at=at, worker=worker)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(t.actions_done.c.idempotency_key)
        )
        return result.first() is not None

    def record_many(self, keys: Sequence[str], *, worker: str, at: datetime) -> set[str]:
        """Record many keys at once; returns the ones that were new."""
        if not keys:
            return set()
        rows = self._conn.execute(
            _ledger_insert(self._dialect),
            [{"idempotency_key": k, "done_at": at, "worker": worker} for k in keys],
        )
        return set(rows.scalars())

    def is_done(self, key: str) -> bool:
        q = select(t.actions_done.c.idempotency_key).where(t.actions_done.c.idempotency_key == key)
        return self._conn.execute(q).first() is not None


# --------------------------------------------------------------------------- people and keys


class SqlUserRepository(_Repository, iface.UserRepository):
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
        row = self._conn.execute(
            self._insert(t.users)
            .values(
                email=email.lower(),
                role=role,
                teams=list(teams),
                password_hash=password_hash,
                person=person,
                created_at=at,
            )
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(*t.users.c)
        ).first()
        return UserRow(**row._mapping) if row else None

    def get_by_email(self, email: str) -> UserRow | None:
        row = self._conn.execute(select(t.users).where(t.users.c.email == email.lower())).first()
        return UserRow(**row._mapping) if row else None

    def list_all(self) -> list[UserRow]:
        q = select(t.users).order_by(t.users.c.id)
        return [UserRow(**r._mapping) for r in self._conn.execute(q)]

    def update(self, email: str, **changes: Any) -> UserRow | None:
        unknown = set(changes) - iface.USER_CHANGES
        if unknown:
            raise ValueError(f"cannot change user field(s): {', '.join(sorted(unknown))}")
        if "teams" in changes:
            changes["teams"] = list(changes["teams"])
        row = self._conn.execute(
            t.users.update()
            .where(t.users.c.email == email.lower())
            .values(**changes)
            .returning(*t.users.c)
        ).first()
        return UserRow(**row._mapping) if row else None


class SqlApiKeyRepository(_Repository, iface.ApiKeyRepository):
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
        row = self._conn.execute(
            self._insert(t.api_keys)
            .values(
                name=name,
                secret_hash=secret_hash,
                scopes=list(scopes),
                teams=list(teams),
                created_by=created_by,
                created_at=at,
            )
            .on_conflict_do_nothing()
            .returning(*t.api_keys.c)
        ).first()
        return ApiKeyRow(**row._mapping) if row else None

    def get(self, name: str) -> ApiKeyRow | None:
        row = self._conn.execute(select(t.api_keys).where(t.api_keys.c.name == name)).first()
        return ApiKeyRow(**row._mapping) if row else None

    def by_hash(self, secret_hash: str) -> ApiKeyRow | None:
        q = select(t.api_keys).where(t.api_keys.c.secret_hash == secret_hash)
        row = self._conn.execute(q).first()
        return ApiKeyRow(**row._mapping) if row else None

    def list_all(self) -> list[ApiKeyRow]:
        q = select(t.api_keys).order_by(t.api_keys.c.id)
        return [ApiKeyRow(**r._mapping) for r in self._conn.execute(q)]

    def revoke(self, name: str, *, at: datetime) -> ApiKeyRow | None:
        c = t.api_keys.c
        self._conn.execute(
            t.api_keys.update().where(c.name == name, c.revoked_at.is_(None)).values(revoked_at=at)
        )
        return self.get(name)

    def touch(self, key_id: int, *, at: datetime) -> None:
        self._conn.execute(
            t.api_keys.update().where(t.api_keys.c.id == key_id).values(last_used_at=at)
        )


class SqlAuditRepository(_Repository, iface.AuditRepository):
    """Appends lock the head row (``FOR UPDATE`` on PostgreSQL; SQLite's unit of work
    already holds the write lock), so writers take turns and the chain never forks."""

    def append(self, entry: NewAuditEntry) -> AuditRow:
        h = t.audit_head.c
        head = self._conn.execute(
            select(h.count, h.last_id, h.last_hash).where(h.id == 1).with_for_update()
        ).first()
        if head is None:
            self._conn.execute(
                self._insert(t.audit_head)
                .values(id=1, count=0, last_id=0, last_hash=GENESIS)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            head = self._conn.execute(
                select(h.count, h.last_id, h.last_hash).where(h.id == 1).with_for_update()
            ).one()
        count, last_id, prev = head
        new_id = last_id + 1
        digest = entry_hash(new_id, entry, prev)
        values = {
            "id": new_id,
            "at": entry.at,
            "actor": entry.actor[:320],
            "actor_kind": entry.actor_kind,
            "action": entry.action,
            "target": entry.target[:300],
            "outcome": entry.outcome,
            "address": entry.address,
            "before": entry.before,
            "after": entry.after,
            "detail": entry.detail,
            "prev_hash": prev,
            "hash": digest,
        }
        self._conn.execute(t.audit_log.insert().values(**values))
        self._conn.execute(
            t.audit_head.update()
            .where(h.id == 1)
            .values(count=count + 1, last_id=new_id, last_hash=digest)
        )
        # what was stored (times round-trip through the column types)
        row = self._conn.execute(select(t.audit_log).where(t.audit_log.c.id == new_id)).one()
        return AuditRow(**row._mapping)

    def entries(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRow]:
        c = t.audit_log.c
        q = select(t.audit_log).where(c.id > after_id).order_by(c.id).limit(limit)
        return [AuditRow(**r._mapping) for r in self._conn.execute(q)]

    def head(self) -> AuditHead | None:
        h = t.audit_head.c
        row = self._conn.execute(select(h.count, h.last_id, h.last_hash).where(h.id == 1)).first()
        return AuditHead(int(row[0]), int(row[1]), str(row[2])) if row else None


# --------------------------------------------------------------------------- prepared
# The engine's hottest statements, built once: constructing a statement costs more than
# running it on SQLite.

_ESC_BY_ID = select(t.escalations).where(t.escalations.c.id == bindparam("id"))
_ESC_BY_IDS = select(t.escalations).where(t.escalations.c.id.in_(bindparam("ids", expanding=True)))
_ESC_BY_REF = select(t.escalations).where(t.escalations.c.ref == bindparam("ref"))
_ESC_LOCK = _ESC_BY_ID.with_for_update()

_PENDING = t.timers.c.state == TimerState.pending.value
_LEASE_OR_DUE = func.min(
    case(
        (t.timers.c.lease_until > t.timers.c.due_at, t.timers.c.lease_until),
        else_=t.timers.c.due_at,
    ),
    type_=UTCDateTime(),
)
_FREE = select(t.timers.c.due_at).where(_PENDING, t.timers.c.lease_until.is_(None))
_TIMER_FIRST_FREE = _FREE.order_by(t.timers.c.due_at, t.timers.c.id).limit(1)
_TIMER_FIRST_FREE_KINDS = (
    _FREE.where(t.timers.c.kind.in_(bindparam("kinds", expanding=True)))
    .order_by(t.timers.c.due_at, t.timers.c.id)
    .limit(1)
)
_TIMER_LEASE_END = select(_LEASE_OR_DUE).where(_PENDING, t.timers.c.lease_until.is_not(None))
_TIMER_LEASE_END_KINDS = _TIMER_LEASE_END.where(
    t.timers.c.kind.in_(bindparam("kinds", expanding=True))
)
_TIMER_PICK = (
    select(t.timers.c.id)
    .where(
        _PENDING,
        t.timers.c.kind.in_(bindparam("kinds", expanding=True)),
        t.timers.c.due_at <= bindparam("now"),
        or_(t.timers.c.lease_until.is_(None), t.timers.c.lease_until <= bindparam("now")),
    )
    .order_by(t.timers.c.due_at, t.timers.c.id)
    .limit(bindparam("lim"))
    .with_for_update(skip_locked=True)
)
_TIMER_CLAIM = (
    t.timers.update()
    .where(t.timers.c.id.in_(_TIMER_PICK.scalar_subquery()))
    .values(
        claimed_by=bindparam("worker"),
        lease_until=bindparam("lease_until"),
        attempts=t.timers.c.attempts + 1,
    )
    .returning(*t.timers.c)
)
_TIMER_FINISH = (
    t.timers.update()
    .where(t.timers.c.id == bindparam("timer_id"), _PENDING)
    .values(
        state=TimerState.done.value,
        fired_at=bindparam("now"),
        late=bindparam("is_late"),
        lease_until=None,
        last_error=None,
    )
)
_OUTBOX_PENDING = t.outbox.c.state == OutboxState.pending.value
_OUTBOX_FIRST_FREE = (
    select(t.outbox.c.available_at)
    .where(
        _OUTBOX_PENDING,
        or_(
            t.outbox.c.lease_until.is_(None),
            t.outbox.c.lease_until <= t.outbox.c.available_at,
        ),
    )
    .order_by(t.outbox.c.available_at, t.outbox.c.id)
    .limit(1)
)
_OUTBOX_LEASE_END = select(
    func.min(
        case(
            (t.outbox.c.lease_until > t.outbox.c.available_at, t.outbox.c.lease_until),
            else_=t.outbox.c.available_at,
        ),
        type_=UTCDateTime(),
    )
).where(_OUTBOX_PENDING, t.outbox.c.lease_until.is_not(None))


def _outbox_claim(*, by_channel: bool) -> Any:
    """Built once (two variants): take due messages, ``SKIP LOCKED`` on PostgreSQL."""
    now = bindparam("now", type_=UTCDateTime())
    pick = (
        select(t.outbox.c.id)
        .where(
            _OUTBOX_PENDING,
            t.outbox.c.available_at <= now,
            or_(t.outbox.c.lease_until.is_(None), t.outbox.c.lease_until <= now),
        )
        .order_by(t.outbox.c.available_at, t.outbox.c.id)
        .limit(bindparam("lim"))
        .with_for_update(skip_locked=True)
    )
    if by_channel:
        pick = pick.where(t.outbox.c.channel.in_(bindparam("channels", expanding=True)))
    return (
        t.outbox.update()
        .where(t.outbox.c.id.in_(pick.scalar_subquery()))
        .values(
            claimed_by=bindparam("worker"),
            lease_until=bindparam("lease_until"),
            attempts=t.outbox.c.attempts + 1,
        )
        .returning(*t.outbox.c)
    )


_OUTBOX_CLAIM = _outbox_claim(by_channel=False)
_OUTBOX_CLAIM_CHANNELS = _outbox_claim(by_channel=True)
_ESC_INSERT = t.escalations.insert().returning(*t.escalations.c)
_GROUP_MEMBERS = (
    select(t.escalations)
    .join(t.escalation_groups, t.escalation_groups.c.escalation_id == t.escalations.c.id)
    .where(
        t.escalation_groups.c.key == bindparam("key"),
        t.escalation_groups.c.created_at >= bindparam("since", type_=UTCDateTime()),
        t.escalations.c.parent_id.is_(None),
        t.escalations.c.state.in_(("open", "acknowledged", "investigating")),
    )
    .order_by(t.escalations.c.id)
)
_ALERT_KEY_GET = select(t.alert_keys.c.escalation_id).where(t.alert_keys.c.key == bindparam("key"))
_ESC_SET_REF = (
    t.escalations.update()
    .where(t.escalations.c.id == bindparam("escalation_id"))
    .values(ref=bindparam("new_ref"))
    .returning(*t.escalations.c)
)
_ESC_BY_ALERT_KEY = (
    select(t.escalations)
    .join(t.alert_keys, t.alert_keys.c.escalation_id == t.escalations.c.id)
    .where(t.alert_keys.c.key == bindparam("key"))
)
_TIMELINE_OF = (
    select(t.timeline)
    .where(t.timeline.c.escalation_id == bindparam("escalation_id"))
    .order_by(t.timeline.c.id)
)


def _dialect_insert(dialect: str, table: Table) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


@cache
def _timer_insert(dialect: str) -> Any:
    return (
        _dialect_insert(dialect, t.timers)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(t.timers.c.id)
    )


@cache
def _ledger_insert(dialect: str) -> Any:
    return (
        _dialect_insert(dialect, t.actions_done)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(t.actions_done.c.idempotency_key)
    )


@cache
def _outbox_insert(dialect: str) -> Any:
    return (
        _dialect_insert(dialect, t.outbox)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(t.outbox.c.id)
    )


@cache
def _outbox_insert_keys(dialect: str) -> Any:
    return (
        _dialect_insert(dialect, t.outbox)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(t.outbox.c.id, t.outbox.c.idempotency_key)
    )


_DELIVERY_INSERT = t.deliveries.insert()
_DELIVERY_INSERT_MANY = t.deliveries.insert().returning(t.deliveries.c.id)  # one statement


def _pg_enqueue_logged() -> Any:
    """PostgreSQL: the outbox insert and its 'queued' log row in one statement."""
    names = ["idempotency_key", "escalation_id", "channel", "recipient", "audience", "template",
             "payload", "state", "created_at", "available_at", "attempts"]  # fmt: skip
    queued = (
        postgresql.insert(t.outbox)
        .values({name: bindparam(name, type_=t.outbox.c[name].type) for name in names})
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(
            t.outbox.c.id,
            t.outbox.c.idempotency_key,
            t.outbox.c.escalation_id,
            t.outbox.c.channel,
            t.outbox.c.recipient,
            t.outbox.c.created_at,
        )
        .cte("queued")
    )
    return t.deliveries.insert().from_select(
        ["message_id", "idempotency_key", "escalation_id", "channel", "recipient", "at",
         "event", "attempt"],
        select(
            queued.c.id,
            queued.c.idempotency_key,
            queued.c.escalation_id,
            queued.c.channel,
            queued.c.recipient,
            queued.c.created_at,
            literal(DeliveryEvent.queued.value),
            literal(0),
        ),
    ).returning(t.deliveries.c.id)  # fmt: skip


_PG_ENQUEUE_LOGGED = _pg_enqueue_logged()
_OUTBOX_CANCEL = (
    t.outbox.update()
    .where(
        t.outbox.c.id.in_(bindparam("ids", expanding=True)),
        t.outbox.c.state == OutboxState.pending.value,
    )
    .values(state=OutboxState.cancelled.value, lease_until=None, claimed_by=None)
)

_OUTBOX_SENT = (
    t.outbox.update()
    .where(
        t.outbox.c.id.in_(bindparam("ids", expanding=True)),
        t.outbox.c.state == OutboxState.pending.value,
    )
    .values(state=OutboxState.sent.value, sent_at=bindparam("at"), lease_until=None)
)


# --------------------------------------------------------------------------- on-call overrides


class SqlOverrideRepository(_Repository, iface.OverrideRepository):
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
        row = self._conn.execute(
            t.oncall_overrides.insert()
            .values(
                schedule=schedule,
                person=person,
                replaces=replaces,
                start_at=start_at,
                end_at=end_at,
                reason=reason,
                created_by=created_by[:320],
                created_at=created_at,
            )
            .returning(*t.oncall_overrides.c)
        ).one()
        return OverrideRow(**row._mapping)

    def get(self, override_id: int) -> OverrideRow | None:
        c = t.oncall_overrides.c
        row = self._conn.execute(select(t.oncall_overrides).where(c.id == override_id)).first()
        return OverrideRow(**row._mapping) if row else None

    def for_schedule(
        self, schedule: str, *, ending_after: datetime | None = None
    ) -> list[OverrideRow]:
        c = t.oncall_overrides.c
        q = select(t.oncall_overrides).where(c.schedule == schedule).order_by(c.id)
        if ending_after is not None:
            q = q.where(c.end_at > ending_after)
        return [OverrideRow(**r._mapping) for r in self._conn.execute(q)]

    def delete(self, override_id: int) -> OverrideRow | None:
        row = self.get(override_id)
        if row is not None:
            c = t.oncall_overrides.c
            self._conn.execute(t.oncall_overrides.delete().where(c.id == override_id))
        return row
