"""Migrations build the schema from empty, on SQLite and PostgreSQL, and match tables.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from escalade.store import Store
from escalade.store.migrate import downgrade, head_revision
from escalade.store.tables import metadata

TABLES = {
    "policy_versions",
    "escalations",
    "timeline",
    "timers",
    "outbox",
    "activity",
    "alert_keys",
    "actions_done",
    "deliveries",
    "users",
    "api_keys",
    "audit_log",
    "audit_head",
}


def test_upgrade_from_empty_creates_every_table(empty_store: Store) -> None:
    assert empty_store.current_revision() is None
    empty_store.upgrade()
    assert empty_store.current_revision() == head_revision()
    with empty_store.engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    assert names >= TABLES


def test_upgrade_twice_is_harmless(sql_store: Store) -> None:
    sql_store.upgrade()
    assert sql_store.current_revision() == head_revision()


def test_migrated_schema_matches_the_tables_module(sql_store: Store) -> None:
    with sql_store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_downgrade_to_base_and_up_again(sql_store: Store) -> None:
    downgrade(sql_store, "base")
    with sql_store.engine.connect() as conn:
        assert not set(inspect(conn).get_table_names()) & TABLES
    sql_store.upgrade()
    assert sql_store.current_revision() == head_revision()


def test_timers_claim_index_is_partial(sql_store: Store) -> None:
    with sql_store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            sql = (
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_timers_pending_due' "
                "AND schemaname = current_schema()"
            )
        else:
            sql = "SELECT sql FROM sqlite_master WHERE name = 'ix_timers_pending_due'"
        definition = conn.execute(text(sql)).scalar_one()
    assert "pending" in definition.lower()
