"""Storage: the store's interface, its rows, and two implementations.

Everything durable lives behind ``Store`` and its units of work: policy versions,
escalations with their snapshot, the append-only timeline, durable timers, the outbox,
product activity, alert keys and the exactly-once ledger. ``escalade.store.db.SqlStore``
is the database (SQLite by default, PostgreSQL to share the work among workers);
``escalade.store.memory.MemoryStore`` is ``simulate``'s throw-away store. Importing this
package does not load SQLAlchemy.
"""

from escalade.store.interface import (
    DEFAULT_DATABASE_URL,
    ConcurrentUpdate,
    Deferred,
    NewDelivery,
    NewEntry,
    NewMessage,
    NewTimer,
    Store,
    StoreError,
    TransientConflict,
    UnitOfWork,
    content_hash,
)
from escalade.store.rows import (
    DeliveryEvent,
    DeliveryRow,
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
    "Deferred",
    "DeliveryEvent",
    "DeliveryRow",
    "EscalationRow",
    "NewDelivery",
    "NewEntry",
    "NewMessage",
    "NewTimer",
    "OutboxMessage",
    "OutboxState",
    "PolicyVersionRow",
    "Store",
    "StoreError",
    "TimelineEntry",
    "TimerRow",
    "TimerState",
    "TransientConflict",
    "UnitOfWork",
    "content_hash",
]
