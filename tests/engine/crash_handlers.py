"""Handlers for the crash tests, run by ``escalade worker --handlers crash_handlers:handlers``.

The action records its timer's key in ``crash_results`` inside the engine's transaction,
with no uniqueness constraint: a key done twice shows up as two rows.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

from sqlalchemy import text

from escalade.store import TimerRow, UnitOfWork

CREATE = (
    "CREATE TABLE crash_results (key VARCHAR(300) NOT NULL, worker VARCHAR(200) NOT NULL, "
    "pid INTEGER NOT NULL)"
)
WORK_SECONDS = float(os.environ.get("CRASH_WORK_SECONDS", "0.001"))


def record(uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
    uow.connection.execute(
        text("INSERT INTO crash_results (key, worker, pid) VALUES (:key, :worker, :pid)"),
        {"key": timer.key, "worker": timer.claimed_by or "?", "pid": os.getpid()},
    )
    time.sleep(WORK_SECONDS)  # a little work, so kills land inside transactions


handlers = {"crash.action": record}
