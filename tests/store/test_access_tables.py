"""Users, API keys and the audit log on SQLite, PostgreSQL and the memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from escalade.store import Store
from escalade.store.auditchain import verify
from escalade.store.rows import NewAuditEntry

T0 = datetime(2026, 3, 7, 23, 50, tzinfo=UTC)


def test_users_are_unique_by_email_ignoring_case(store: Store) -> None:
    with store.unit_of_work() as uow:
        ana = uow.users.add(email="Ana@Example.com", role="lead", teams=["billing"], at=T0)
        assert ana is not None and ana.email == "ana@example.com"
        assert uow.users.add(email="ANA@example.com", role="viewer", teams=[], at=T0) is None
        uow.commit()
    with store.unit_of_work() as uow:
        got = uow.users.get_by_email("ana@EXAMPLE.com")
        assert got is not None and got.teams == ["billing"] and got.role == "lead"
        changed = uow.users.update("ana@example.com", role="admin", teams=["billing", "legal"])
        assert changed is not None and changed.role == "admin"
        assert uow.users.update("nobody@example.com", role="admin") is None
        with pytest.raises(ValueError, match="created_at"):
            uow.users.update("ana@example.com", created_at=T0)
        uow.commit()
    with store.unit_of_work() as uow:
        assert [u.teams for u in uow.users.list_all()] == [["billing", "legal"]]


def test_keys_by_name_and_hash_revoke_and_last_use(store: Store) -> None:
    with store.unit_of_work() as uow:
        key = uow.api_keys.add(
            name="alertmanager",
            secret_hash="a" * 64,
            scopes=["intake"],
            teams=[],
            created_by="cli",
            at=T0,
        )
        assert key is not None and key.revoked_at is None and key.last_used_at is None
        again = uow.api_keys.add(
            name="alertmanager",
            secret_hash="b" * 64,
            scopes=["read"],
            teams=[],
            created_by="x",
            at=T0,
        )
        assert again is None
        uow.commit()
    with store.unit_of_work() as uow:
        found = uow.api_keys.by_hash("a" * 64)
        assert found is not None and found.name == "alertmanager"
        assert uow.api_keys.by_hash("b" * 64) is None
        uow.api_keys.touch(found.id, at=T0 + timedelta(minutes=5))
        revoked = uow.api_keys.revoke("alertmanager", at=T0 + timedelta(hours=1))
        assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1)
        assert uow.api_keys.revoke("nope", at=T0) is None
        uow.commit()
    with store.unit_of_work() as uow:
        [row] = uow.api_keys.list_all()
        assert row.last_used_at == T0 + timedelta(minutes=5)
        # revoking again keeps the first time
        again2 = uow.api_keys.revoke("alertmanager", at=T0 + timedelta(days=1))
        assert again2 is not None and again2.revoked_at == T0 + timedelta(hours=1)


def _entry(i: int, **kw: object) -> NewAuditEntry:
    return NewAuditEntry(
        at=T0 + timedelta(seconds=i),
        actor="key:ops",
        actor_kind="key",
        action="escalation.act",
        target=f"escalation:T-{i}",
        before={"state": "open"},
        after={"state": "acknowledged", "n": i},
        address="10.0.0.1",
        **kw,  # type: ignore[arg-type]
    )


def test_audit_entries_chain_and_verify(store: Store) -> None:
    with store.unit_of_work() as uow:
        first = uow.audit.append(_entry(1))
        second = uow.audit.append(_entry(2, detail="second"))
        uow.commit()
    assert first.id == 1 and second.id == 2
    assert second.prev_hash == first.hash and first.prev_hash == "0" * 64
    with store.unit_of_work() as uow:
        uow.audit.append(_entry(3))
        # not committed: the head does not move either
    with store.unit_of_work() as uow:
        rows = uow.audit.entries()
        head = uow.audit.head()
    assert [r.id for r in rows] == [1, 2]
    assert head is not None and (head.count, head.last_id, head.last_hash) == (2, 2, second.hash)
    assert verify(rows, head) == []
    assert rows[1].after == {"state": "acknowledged", "n": 2} and rows[0].at == T0 + timedelta(
        1 / 86400
    )


def test_an_empty_log_verifies(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert verify(uow.audit.entries(), uow.audit.head()) == []


def test_the_database_refuses_to_change_the_audit_log(sql_store: Store) -> None:
    with sql_store.unit_of_work() as uow:
        uow.audit.append(_entry(1))
        uow.commit()
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            sql_store.engine.begin() as conn,  # type: ignore[attr-defined]
        ):
            conn.execute(text(sql))


def test_find_filters_for_access(store: Store, policy_version_id: int) -> None:
    """The filters lists use: a cursor, teams, priority, and confidential categories hidden
    unless the escalation is with one of the caller's teams."""
    rows = [
        ("frontline", "general", "P2"),
        ("legal", "legal_threat", "P1"),
        ("frontline", "legal_threat", "P1"),
        ("security", None, "P2"),
    ]
    with store.unit_of_work() as uow:
        ids = [
            uow.escalations.add(
                policy_version_id=policy_version_id,
                snapshot={},
                at=T0,
                team=team,
                category=category,
                priority=priority,
            ).id
            for team, category, priority in rows
        ]
        uow.commit()
    with store.unit_of_work() as uow:
        find = uow.escalations.find
        assert [e.id for e in find()] == ids[::-1]
        assert [e.id for e in find(before_id=ids[2])] == [ids[1], ids[0]]
        assert [e.id for e in find(teams=["legal", "security"])] == [ids[3], ids[1]]
        assert [e.id for e in find(teams=[])] == []
        assert [e.id for e in find(priority="P1")] == [ids[2], ids[1]]
        hidden = find(hidden_categories=["legal_threat"])
        assert [e.id for e in hidden] == [ids[3], ids[0]]
        mine = find(hidden_categories=["legal_threat"], unless_teams=["legal"])
        assert [e.id for e in mine] == [ids[3], ids[1], ids[0]]


@pytest.mark.postgres
def test_concurrent_audit_writers_never_fork_the_chain(pg_base_url: str) -> None:
    """Eight writers append at once on PostgreSQL: the head row lock makes them take turns,
    so every entry follows the one before it."""
    import threading

    from tests.conftest import _pg_schema_url

    from escalade.store.db import SqlStore

    schemas = _pg_schema_url(pg_base_url)
    db = SqlStore(next(schemas))
    db.upgrade()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(25):
                with db.unit_of_work() as uow:
                    uow.audit.append(_entry(n * 100 + i))
                    uow.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert errors == []
        with db.unit_of_work() as uow:
            entries = uow.audit.entries(limit=1000)
            head = uow.audit.head()
        assert len(entries) == 200 and [e.id for e in entries] == list(range(1, 201))
        assert verify(entries, head) == []
    finally:
        db.dispose()
        schemas.close()  # drops the schema
