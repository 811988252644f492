"""The on-call overrides table and the active policy version, on every store (SQLite,
PostgreSQL, memory): what commits is kept, what rolls back is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from escalade.store import Store
from escalade.store.db import SqlStore

T0 = datetime(2026, 3, 9, 12, tzinfo=UTC)


def _add(store: Store, schedule: str, person: str, hours: int, *, commit: bool = True) -> int:
    with store.unit_of_work() as uow:
        row = uow.overrides.add(
            schedule=schedule,
            person=person,
            start_at=T0,
            end_at=T0 + timedelta(hours=hours),
            created_by="key:admin",
            created_at=T0,
            replaces="bo" if person == "cy" else None,
            reason="cover",
        )
        if commit:
            uow.commit()
    return row.id


def test_overrides_are_kept_in_order_and_removed(store: Store) -> None:
    first = _add(store, "primary", "cy", 2)
    _add(store, "nights", "ana", 2)
    second = _add(store, "primary", "dee", 10)
    _add(store, "primary", "eve", 5, commit=False)  # rolled back
    with store.unit_of_work(readonly=True) as uow:
        rows = uow.overrides.for_schedule("primary")
        assert [(r.id, r.person, r.replaces) for r in rows] == [
            (first, "cy", "bo"),
            (second, "dee", None),
        ]
        assert rows[0].start_at == T0 and rows[0].end_at.tzinfo is not None
        later = uow.overrides.for_schedule("primary", ending_after=T0 + timedelta(hours=2))
        assert [r.id for r in later] == [second]  # ending exactly then is over
        assert uow.overrides.get(first) == rows[0]
    with store.unit_of_work() as uow:
        gone = uow.overrides.delete(first)
        assert gone is not None and gone.person == "cy"
        assert uow.overrides.delete(first) is None
        uow.rollback()
    with store.unit_of_work() as uow:
        assert uow.overrides.get(first) is not None  # the rollback kept it
        uow.overrides.delete(first)
        uow.commit()
    with store.unit_of_work(readonly=True) as uow:
        assert [r.id for r in uow.overrides.for_schedule("primary")] == [second]


def test_the_newest_activation_is_the_active_version(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.policies.active_id() is None
        a = uow.policies.add(name="p", content="a", applied_by="t", at=T0)
        b = uow.policies.add(name="p", content="b", applied_by="t", at=T0)
        uow.policies.activate(a.id, by="serve", at=T0)
        uow.policies.activate(b.id, by="key:admin", at=T0)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.policies.active_id() == b.id
        uow.policies.activate(a.id, by="serve", at=T0)  # an older version made active again
        assert uow.policies.active_id() == a.id
        uow.rollback()
    with store.unit_of_work(readonly=True) as uow:
        assert uow.policies.active_id() == b.id


def test_the_migration_makes_the_latest_version_active(empty_store: Store) -> None:
    """0006_overrides: a database that already holds versions starts with the most recently
    applied one active (what a restarted process took up before)."""
    assert isinstance(empty_store, SqlStore)
    empty_store.upgrade("0004_groups")
    with empty_store.unit_of_work() as uow:
        for content in ("a", "b"):
            uow.connection.execute(
                text(
                    "INSERT INTO policy_versions (content_hash, name, content, applied_by,"
                    " applied_at) VALUES (:h, 'p', :c, 'serve', :at)"
                ),
                {"h": content * 64, "c": content, "at": T0.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")},
            )
        uow.commit()
    empty_store.upgrade()
    with empty_store.unit_of_work(readonly=True) as uow:
        newest = uow.policies.latest()
        assert newest is not None and newest.content == "b"
        assert uow.policies.active_id() == newest.id
