"""The escalation API over a real SQLite store: create, act, list, read with the timeline,
alerts and activity; refusals are 404 / 409 / 422 with the reason, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.routing.router import Router
from escalade.settings import Settings
from escalade.store.db import SqlStore

POLICY = """
id: api-test
levels:
  - {id: L1, team: frontline}
  - {id: L2, team: specialists}
teams:
  - {id: frontline, level: L1, contacts: {chat: "#frontline"}}
  - {id: specialists, level: L2, contacts: {email: spec@example.com}}
priorities:
  - {id: P1, match: {phrases: [outage]}, response: 1h}
  - {id: P2, response: 4h}
categories:
  - {id: general, owner: frontline, path: [specialists], match: {phrases: [question]}}
routing: {default_priority: P2, default_category: general}
alerts: {category: general, severity: {critical: P1}}
triggers:
  - id: bulk-deletes
    kind: threshold
    threshold: {activity: record.deleted, more_than: 3, window: 1d}
    then: {category: general, priority: P1}
"""


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    store = SqlStore(f"sqlite:///{tmp_path / 'api.db'}")
    store.upgrade()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    policy = policy_from_text(POLICY, "api-test.yaml")
    runtime = bootstrap(Settings(), store=store, clock=clock, router=Router(policy), engine=False)
    app = create_app(Settings(), policy, None, clock, service=runtime.service)
    return TestClient(app, headers=bearer(issue_key(store, "read", "write", "intake")))


def test_create_read_act_and_timeline(client: TestClient) -> None:
    r = client.post(
        "/v1/escalations",
        json={"ref": "T-1", "subject": "A question about exports", "customer": {"email": "a@b.c"}},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["ref"], body["state"], body["team"], body["priority"]) == (
        "T-1",
        "open",
        "frontline",
        "P2",
    )
    assert body["decision"]["reasons"]

    r = client.post("/v1/escalations/T-1/actions", json={"action": "acknowledge", "by": "lena"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    r = client.post(
        "/v1/escalations/T-1/actions",
        json={"action": "escalate", "by": "lena", "reason": "customer_request"},
    )
    assert r.status_code == 200 and r.json()["team"] == "specialists"

    timeline = client.get("/v1/escalations/T-1").json()["timeline"]
    kinds = [e["type"] for e in timeline]
    assert kinds[:2] == ["escalation.created", "escalation.acknowledged"]
    escalated = next(e for e in timeline if e["type"] == "escalation.escalated")
    assert escalated["cause"] == "customer_request" and escalated["actor"] == "lena"

    listed = client.get("/v1/escalations", params={"state": ["acknowledged"]}).json()
    assert [e["ref"] for e in listed] == ["T-1"]


def test_refusals_have_reasons(client: TestClient) -> None:
    client.post("/v1/escalations", json={"ref": "T-2", "subject": "question"})
    r = client.post("/v1/escalations/T-2/actions", json={"action": "close", "by": "lena"})
    assert r.status_code == 409
    assert r.json()["detail"] == [
        {
            "loc": ["body", "action"],
            "field": "action",
            "msg": "cannot close an escalation that is open: resolve it first",
            "type": "conflict",
        }
    ]
    r = client.post("/v1/escalations/NOPE/actions", json={"action": "acknowledge", "by": "x"})
    assert r.status_code == 404 and "NOPE" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["type"] == "not_found"
    r = client.post("/v1/escalations/T-2/actions", json={"action": "dance", "by": "x"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "action"
    r = client.post("/v1/escalations", json={"ref": "T-2", "subject": "again"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["field"] == "ref"
    r = client.post("/v1/escalations", json={"subject": "x", "priority": "P9"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "priority"
    assert client.get("/v1/escalations/NOPE").status_code == 404


def test_alerts_deduplicate_and_resolve(client: TestClient) -> None:
    alert = {
        "source": "alertmanager",
        "key": "DiskFull/db1",
        "severity": "critical",
        "summary": "Disk full on db1",
    }
    first = client.post("/v1/alerts", json=alert).json()["escalation"]
    again = client.post("/v1/alerts", json=alert).json()["escalation"]
    assert first["ref"] == again["ref"] and first["priority"] == "P1"
    done = client.post("/v1/alerts", json={**alert, "status": "resolved"}).json()["escalation"]
    assert done["state"] == "resolved"
    kinds = [e["type"] for e in client.get(f"/v1/escalations/{first['ref']}").json()["timeline"]]
    assert "alert.repeated" in kinds and "escalation.resolved" in kinds


def test_activity_threshold_creates_an_escalation(client: TestClient) -> None:
    for _ in range(3):
        assert client.post(
            "/v1/activity", json={"actor": "u1", "action": "record.deleted"}
        ).json() == {"created": []}
    created = client.post("/v1/activity", json={"actor": "u1", "action": "record.deleted"})
    [esc] = created.json()["created"]
    assert esc["priority"] == "P1"
    r = client.post("/v1/activity", json={"actor": "u1", "action": "x", "count": 0})
    assert r.status_code == 422


def test_escalade_names_are_reserved(client: TestClient) -> None:
    r = client.post("/v1/escalations", json={"ref": "ESC-2", "subject": "x"})
    assert r.status_code == 409 and "given by Escalade" in r.json()["detail"][0]["msg"]
    first = client.post("/v1/escalations", json={"subject": "question one"}).json()
    second = client.post("/v1/escalations", json={"subject": "question two"}).json()
    assert (first["ref"], second["ref"]) == ("ESC-1", "ESC-2")
