"""The audit log's hash chain, pure: how an entry's hash is computed, and how a whole log
is checked.

Each entry's ``hash`` is the SHA-256 of its content in canonical JSON, including its id
and the ``prev_hash`` of the entry before (``GENESIS`` for the first). The head (the
number of entries and the last hash) is kept apart, so that removing the last entries is
detected too. A changed entry no longer matches its hash; a removed one breaks the chain
(the next entry's ``prev_hash`` names a hash that is not the one before it) and the ids
(they only grow, one by one); two entries swapped break both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from escalade.store.jsonvalues import dumps
from escalade.store.rows import AuditRow, NewAuditEntry

GENESIS = "0" * 64


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry_id: int, entry: NewAuditEntry | AuditRow, prev_hash: str) -> str:
    """The hash of one entry: its id, its content and the previous entry's hash."""
    content: dict[str, Any] = {
        "id": entry_id,
        "at": _time(entry.at),
        "actor": entry.actor,
        "actor_kind": entry.actor_kind,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "address": entry.address,
        "before": entry.before,
        "after": entry.after,
        "detail": entry.detail,
        "prev": prev_hash,
    }
    canonical = json.dumps(json.loads(dumps(content)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditHead:
    """How many entries the log holds and the hash of the last one."""

    count: int
    last_id: int
    last_hash: str


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int | None
    message: str

    def __str__(self) -> str:
        where = f"entry {self.entry_id}" if self.entry_id is not None else "log"
        return f"{where}: {self.message}"


def verify(rows: Iterable[AuditRow], head: AuditHead | None) -> list[ChainProblem]:
    """Every problem with a log read in id order: an entry changed, removed, added or moved."""
    problems: list[ChainProblem] = []
    prev_hash, prev_id, count = GENESIS, 0, 0
    for row in rows:
        count += 1
        if row.id != prev_id + 1:
            problems.append(
                ChainProblem(row.id, f"follows entry {prev_id}: entries between are missing")
            )
        if row.prev_hash != prev_hash:
            problems.append(
                ChainProblem(row.id, "does not follow the entry before it (chain broken)")
            )
        if entry_hash(row.id, row, row.prev_hash) != row.hash:
            problems.append(ChainProblem(row.id, "content changed since it was written"))
        prev_hash, prev_id = row.hash, row.id
    head = head or AuditHead(0, 0, GENESIS)
    if count != head.count or prev_id != head.last_id or prev_hash != head.last_hash:
        problems.append(
            ChainProblem(
                None,
                f"the log holds {count} entries ending at {prev_id}, but {head.count} were "
                f"written ending at {head.last_id}: entries removed or added",
            )
        )
    return problems
