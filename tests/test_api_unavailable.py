"""Honest failure in process: with the database unavailable (PostgreSQL behind a proxy we
stop) or busy (SQLite locked by another connection), every endpoint that needs it answers
503 with ``Retry-After`` in the one error shape, ``/readyz`` fails and ``/healthz`` stays
up; when the database is back, so is the API. (The same with real ``serve`` and ``worker``
processes: tests/engine/test_outage.py.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from tests.conftest import _pg_schema_url
from tests.keys import bearer, issue_key
from tests.tcp_proxy import TcpProxy

from escalade.api.app import create_app
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.db import SqlStore

POLICY = """
id: outage-test
teams: [{id: ops, contacts: {chat: "#ops"}}]
categories: [{id: general, owner: ops}]
priorities: [{id: P2, response: 4h}]
routing: {default_priority: P2, default_category: general}
alerts: {category: general}
"""

Outage = Callable[[], AbstractContextManager[None]]


@contextmanager
def _sqlite_locked(path: str) -> Iterator[None]:
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def outage_client(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TestClient, Outage]]:
    monkeypatch.setenv("ESCALADE_SQLITE_BUSY_TIMEOUT_MS", "200")
    outage: Outage
    if request.param == "sqlite":
        path = str(tmp_path_factory.mktemp("db") / "outage.db")
        urls: Iterator[str] = iter([f"sqlite:///{path}"])
        proxy = None

        def outage() -> AbstractContextManager[None]:
            return _sqlite_locked(path)
    else:
        urls = _pg_schema_url(request.getfixturevalue("pg_base_url"))
        real = make_url(request.getfixturevalue("pg_base_url"))
        proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
        proxy.start()

        @contextmanager
        def outage() -> Iterator[None]:
            assert proxy is not None
            proxy.stop()
            try:
                yield
            finally:
                proxy.start()

    for url in urls:
        if proxy is not None:
            url = make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
        store = SqlStore(url)
        store.upgrade()
        clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
        service = EscalationService(store, clock)
        policy = policy_from_text(POLICY, "outage-test.yaml")
        service.apply_policy(policy)
        app = create_app(Settings(database_url=url), policy, None, clock, service=service)
        try:
            with TestClient(app, headers=bearer(issue_key(store, "admin"))) as client:
                yield client, outage
        finally:
            store.dispose()
            if proxy is not None:
                proxy.stop()


def _assert_503(r: Any) -> dict[str, Any]:
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1
    [item] = r.json()["detail"]
    assert item["loc"] == ["database"] and item["field"] == "database"
    assert item["type"] in ("database_busy", "database_unavailable")
    assert "retry after" in item["msg"]
    return item


def test_database_outage_is_503_with_retry_after(
    outage_client: tuple[TestClient, Outage],
) -> None:
    client, outage = outage_client
    assert client.post("/v1/escalations", json={"ref": "BEFORE", "subject": "x"}).status_code == 201
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "reachable"
    assert ready.json()["checks"]["migrations"].startswith("current")

    with outage():
        _assert_503(client.post("/v1/escalations", json={"ref": "DURING", "subject": "x"}))
        _assert_503(
            client.post("/v1/escalations/BEFORE/actions", json={"action": "acknowledge", "by": "a"})
        )
        _assert_503(client.post("/v1/alerts", json={"key": "disk/db1"}))
        if client.app.state.escalade.settings.database_url.startswith("sqlite"):
            # WAL: a page reads its snapshot and never waits behind a writer (issue 14)
            assert client.get("/v1/escalations/BEFORE").status_code == 200
            assert client.get("/v1/escalations").status_code == 200
        else:
            _assert_503(client.get("/v1/escalations/BEFORE"))
            _assert_503(client.get("/v1/escalations"))
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and "retry-after" in not_ready.headers
        [item] = not_ready.json()["detail"]
        assert item["field"] == "database"
        assert item["type"] in ("database_busy", "database_unavailable")
        assert client.get("/healthz").status_code == 200  # alive, though not ready
        assert client.post("/v1/route", json={"subject": "x"}).status_code == 200  # no database

    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/escalations", json={"ref": "AFTER", "subject": "x"}).status_code == 201
    refs = {e["ref"] for e in client.get("/v1/escalations").json()}
    assert refs == {"BEFORE", "AFTER"}
