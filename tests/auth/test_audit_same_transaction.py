"""Alerts and activity are audited in the unit of work of their change: a failure after the
change and before the commit leaves neither the change nor its audit entry; a success
leaves both (issue 19: nothing accepted without its audit entry, nothing audited that did
not happen)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key
from tests.test_api_escalations import POLICY

from escalade.api.app import create_app
from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.routing.router import Router
from escalade.settings import Settings
from escalade.store.db import SqlStore
from escalade.store.repositories import SqlAuditRepository

ALERT = {
    "source": "alertmanager",
    "key": "disk-full-db1",
    "status": "firing",
    "severity": "critical",
    "summary": "Disk nearly full on db1",
}


def _client(tmp_path: Path) -> tuple[TestClient, SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'audit.db'}")
    store.upgrade()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    policy = policy_from_text(POLICY, "api-test.yaml")
    runtime = bootstrap(Settings(), store=store, clock=clock, router=Router(policy), engine=False)
    app = create_app(Settings(), policy, None, clock, service=runtime.service)
    headers = bearer(issue_key(store, "read", "write", "intake"))
    return TestClient(app, headers=headers, raise_server_exceptions=False), store


def _stored(store: SqlStore) -> tuple[int, list[str]]:
    """How many escalations exist, and the audit log's actions about alerts and activity."""
    with store.unit_of_work(readonly=True) as uow:
        count = sum(uow.escalations.count_by_state().values())
        actions = [
            e.action for e in uow.audit.entries() if e.action.startswith(("alert.", "activity."))
        ]
    return count, actions


@pytest.fixture
def break_audit(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """From when it is called, appending to the audit log fails: the moment after the
    change and before its commit."""

    def broken(self: Any, entry: Any) -> Any:
        raise RuntimeError("disk gone while writing the audit entry")

    return lambda: monkeypatch.setattr(SqlAuditRepository, "append", broken)


def test_an_alert_that_fails_before_commit_leaves_neither(
    tmp_path: Path, break_audit: Callable[[], None]
) -> None:
    client, store = _client(tmp_path)
    break_audit()
    r = client.post("/v1/alerts", json=ALERT)
    assert r.status_code == 500
    assert _stored(store) == (0, [])


def test_activity_that_fails_before_commit_leaves_neither(
    tmp_path: Path, break_audit: Callable[[], None]
) -> None:
    client, store = _client(tmp_path)
    break_audit()
    for _ in range(4):  # the fourth crosses the threshold (more than 3 in a day)
        r = client.post("/v1/activity", json={"actor": "u1", "action": "record.deleted"})
        assert r.status_code == 500
    assert _stored(store) == (0, [])
    with store.unit_of_work(readonly=True) as uow:
        since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        assert uow.activity.total(action="record.deleted", since=since, until=until) == 0


def test_a_success_leaves_both(tmp_path: Path) -> None:
    client, store = _client(tmp_path)
    assert client.post("/v1/alerts", json=ALERT).status_code == 200
    for _ in range(4):
        r = client.post("/v1/activity", json={"actor": "u1", "action": "record.deleted"})
        assert r.status_code == 200
    count, actions = _stored(store)
    assert count == 2
    assert actions == ["alert.firing"] + ["activity.record"] * 4
    with store.unit_of_work(readonly=True) as uow:
        last = [e for e in uow.audit.entries() if e.action == "activity.record"][-1]
    assert last.after["count"] == 1 and len(last.after["created"]) == 1
