"""Storage: tables, migrations, the unit of work and its repositories.

Everything durable lives here: policy versions, escalations with their snapshot,
the append-only timeline, durable timers, the outbox, product activity, alert keys and
the exactly-once ledger (``actions_done``). SQLite is the embedded default; PostgreSQL
lets several workers share the work.
"""

from escalade.store.db import DEFAULT_DATABASE_URL, Store, StoreError, UnitOfWork
from escalade.store.repositories import ConcurrentUpdate, NewTimer, content_hash
from escalade.store.rows import (
    EscalationRow,
    OutboxMessage,
    OutboxState,
    PolicyVersionRow,
    TimelineEntry,
    TimerRow,
    TimerState,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConcurrentUpdate",
    "EscalationRow",
    "NewTimer",
    "OutboxMessage",
    "OutboxState",
    "PolicyVersionRow",
    "Store",
    "StoreError",
    "TimelineEntry",
    "TimerRow",
    "TimerState",
    "UnitOfWork",
    "content_hash",
]
