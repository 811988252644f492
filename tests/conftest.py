"""Shared fixtures: a migrated ``store`` on SQLite, on PostgreSQL and in memory.

``store`` runs a test on all three (the memory store is ``simulate``'s and must behave as
the databases do); ``sql_store`` only on the two databases, for tests that need SQL,
migrations or a second process.

PostgreSQL tests use ``$ESCALADE_TEST_PG_URL`` or postgresql+psycopg://postgres@127.0.0.1:5432/test
(then user ``root``); each test gets a fresh schema, dropped afterwards. When no server
answers, those tests are skipped with a loud reason, never silently passed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from escalade.store import Store
from escalade.store.db import SqlStore
from escalade.store.memory import MemoryStore

PG_CANDIDATES = (
    [os.environ["ESCALADE_TEST_PG_URL"]]
    if os.environ.get("ESCALADE_TEST_PG_URL")
    else [
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "postgresql+psycopg://root@127.0.0.1:5432/test",
    ]
)

T0 = datetime(2026, 3, 7, 23, 50, tzinfo=UTC)

# Action links are signed with this key in every process the tests start (a generated key
# would otherwise be written beside each database, or in the working directory).
os.environ.setdefault("ESCALADE_SECRET_KEY", "tests-action-link-key-0123456789")


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """A reachable PostgreSQL URL, or a loud skip."""
    problems = []
    for url in PG_CANDIDATES:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url
        except Exception as exc:
            problems.append(f"{url}: {str(exc).splitlines()[0]}")
        finally:
            engine.dispose()
    pytest.skip(f"PostgreSQL unreachable at {'; '.join(problems)} — PostgreSQL tests NOT RUN")


def _pg_schema_url(base: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "escalade.db"
        yield f"sqlite:///{path}"
        return
    yield from _pg_schema_url(request.getfixturevalue("pg_base_url"))


@pytest.fixture
def empty_store(db_url: str) -> Iterator[Store]:
    store = SqlStore(db_url)
    yield store
    store.dispose()


@pytest.fixture
def sql_store(empty_store: Store) -> Store:
    """A migrated, empty database (SQLite or PostgreSQL)."""
    empty_store.upgrade()
    return empty_store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "memory"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A migrated, empty store: SQLite, PostgreSQL or the memory store."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('db') / 'escalade.db'}"])
    else:
        urls = _pg_schema_url(request.getfixturevalue("pg_base_url"))
    for url in urls:
        db = SqlStore(url)
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()


@pytest.fixture
def policy_version_id(store: Store) -> int:
    with store.unit_of_work() as uow:
        row = uow.policies.add(name="test", content="id: test\n", applied_by="tests", at=T0)
        uow.commit()
    return row.id


@pytest.fixture
def pg_store(pg_base_url: str) -> Iterator[Store]:
    """A migrated, empty PostgreSQL store (for what only PostgreSQL can show: locks shared
    by several connections); skipped loudly when no server answers."""
    for url in _pg_schema_url(pg_base_url):
        db = SqlStore(url)
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
