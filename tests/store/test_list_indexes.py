"""Every list filter the API offers reads through an index (issue 20): a page of
escalations filtered by a rare state, team, category or priority, newest first, and the
next page after a cursor, never scans the table. Checked with the database's own query
plan (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL) after ``ANALYZE``, on
a table where the filtered value is rare."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from escalade.store import tables as t
from escalade.store.db import SqlStore

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
ROWS = 4000


def _fill(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        version = uow.policies.add(name="p", content="x", applied_by="t", at=T0)
        rare = {i for i in range(0, ROWS, 500)}
        uow.connection.execute(
            insert(t.escalations),
            [
                {
                    "ref": f"E-{i}",
                    "policy_version_id": version.id,
                    "subject": "s",
                    "state": "closed" if i in rare else "open",
                    "team": "legal" if i in rare else "support",
                    "category": "fraud" if i in rare else "general",
                    "priority": "P0" if i in rare else "P3",
                    "snapshot": {},
                    "customer": {},
                    "package": {},
                    "created_at": T0,
                    "updated_at": T0,
                    "version": 1,
                }
                for i in range(ROWS)
            ],
        )
        uow.commit()
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _plan(store: SqlStore, **filters: Any) -> str:
    """The plan of the repository's own list query with these filters."""
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
        if sql.lstrip().startswith("SELECT") and "FROM escalations" in sql:
            seen.append((sql, params))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        with store.unit_of_work(readonly=True) as uow:
            uow.escalations.find(limit=50, **filters)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    [(sql, params)] = seen
    explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(explain + sql, params).all()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


FILTERS: list[dict[str, Any]] = [
    {"states": ["closed"]},
    {"states": ["closed"], "before_id": ROWS // 2},
    {"team": "legal"},
    {"teams": ["legal"]},
    {"category": "fraud"},
    {"priority": "P0"},
    {"priority": "P0", "before_id": ROWS // 2},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(sorted(f)))
def test_a_rare_filter_reads_through_its_index(
    sql_store: SqlStore, filters: dict[str, Any]
) -> None:
    _fill(sql_store)
    plan = _plan(sql_store, **filters)
    if sql_store.dialect == "sqlite":
        assert not re.search(r"SCAN escalations(?! USING)", plan), plan
        assert re.search(
            r"(SEARCH|SCAN) escalations USING (COVERING )?INDEX ix_escalations_", plan
        ), plan
    else:
        assert "Seq Scan" not in plan, plan
        assert re.search(
            r"Scan( Backward)? using ix_escalations_|Bitmap Index Scan on ix_escalations_", plan
        ), plan
