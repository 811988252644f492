"""Policies over HTTP: validate a text, apply a new version (an editing right: admins
only; a refused attempt is audited), list versions, diff two of them."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key
from tests.test_api_escalations import POLICY

from escalade.api.app import create_app
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.memory import MemoryStore

NEW = POLICY.replace("{id: P2, response: 4h}", "{id: P2, response: 2h}")


def _client() -> tuple[TestClient, MemoryStore]:
    store = MemoryStore()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    service = EscalationService(store, clock)
    service.apply_policy(policy_from_text(POLICY, "api-test.yaml"))
    app = create_app(Settings(), service.active.policy, None, clock, service=service)  # type: ignore[union-attr]
    return TestClient(app), store


def test_validate_lists_every_problem_with_its_place() -> None:
    client, store = _client()
    auth = bearer(issue_key(store, "read"))
    ok = client.post("/v1/policies/validate", json={"content": NEW}, headers=auth).json()
    assert ok == {"valid": True, "id": "api-test", "problems": []}
    bad = NEW.replace("owner: frontline", "owner: nobody")
    r = client.post("/v1/policies/validate", json={"content": bad}, headers=auth).json()
    assert r["valid"] is False
    [problem] = r["problems"]
    assert "nobody" in problem["msg"] and problem["line"] > 1 and problem["field"] == "content"
    inc = client.post(
        "/v1/policies/validate", json={"content": "include: [x.yaml]\nid: a"}, headers=auth
    ).json()
    assert inc["valid"] is False and "include needs a policy read from a file" in str(inc)


def test_only_admins_apply_and_a_refusal_is_audited() -> None:
    client, store = _client()
    writer = bearer(issue_key(store, "read", "write", name="writer"))
    r = client.post("/v1/policies", json={"content": NEW}, headers=writer)
    assert r.status_code == 403
    [item] = r.json()["detail"]
    assert item["right"] == "edit_policy" and "only admins" in item["msg"]
    with store.unit_of_work() as uow:
        refused = [e for e in uow.audit.entries() if e.outcome == "refused"]
    assert [(e.actor, e.action) for e in refused] == [("key:writer", "POST /v1/policies")]
    assert client.get("/v1/policies", headers=writer).json()[0]["active"] is True
    assert len(client.get("/v1/policies", headers=writer).json()) == 1


def test_apply_list_read_and_diff_versions() -> None:
    client, store = _client()
    admin = bearer(issue_key(store, "admin"))
    bad = client.post("/v1/policies", json={"content": "id: x\nlevels: 3"}, headers=admin)
    assert bad.status_code == 422 and all(
        i["type"] == "policy_invalid" for i in bad.json()["detail"]
    )
    applied = client.post("/v1/policies", json={"content": NEW}, headers=admin)
    assert applied.status_code == 201, applied.text
    assert applied.json()["version"] == 2 and applied.json()["active"] is True
    versions = client.get("/v1/policies", headers=admin).json()
    assert [(v["version"], v["active"]) for v in versions] == [(1, False), (2, True)]
    assert versions[1]["applied_by"] == "key:test-admin-all"
    one = client.get("/v1/policies/1", headers=admin).json()
    assert one["policy"]["id"] == "api-test"
    diff = client.get("/v1/policies/diff", params={"from": 1, "to": 2}, headers=admin).json()
    changed = [ln for ln in diff["diff"].splitlines() if ln[:1] in "+-"]
    assert changed == ["--- version 1", "+++ version 2", "-    target: 4h", "+    target: 2h"]
    assert client.get("/v1/policies/9", headers=admin).status_code == 404
    assert client.get("/v1/policies/diff?from=1&to=9", headers=admin).status_code == 404
    # new escalations take the new version; /v1/policy serves it
    made = client.post("/v1/escalations", json={"subject": "question"}, headers=admin).json()
    assert made["policy_version"] == 2
    with store.unit_of_work() as uow:
        applies = [e for e in uow.audit.entries() if e.action == "policy.apply"]
    assert [(e.before, e.after) for e in applies] == [({"version": 1}, {"version": 2})]
