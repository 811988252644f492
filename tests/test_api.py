"""The first server: health, the active policy, routing over HTTP with field-level errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.clock import VirtualClock
from escalade.policy import load_policy
from escalade.settings import Settings
from escalade.store.memory import MemoryStore

POLICY = Path(__file__).parent / "fixtures" / "small-policy.yaml"


@pytest.fixture
def client() -> TestClient:
    policy = load_policy(POLICY)
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    store = MemoryStore()
    app = create_app(Settings(policy_path=POLICY), policy, POLICY, clock, store=store)
    return TestClient(app, headers=bearer(issue_key(store, "read")))


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_policy_is_served(client: TestClient) -> None:
    body = client.get("/v1/policy").json()
    assert body["id"] == "small"
    assert [c["id"] for c in body["categories"]] == ["data_loss", "general"]


def test_route_returns_decision_with_reasons(client: TestClient) -> None:
    r = client.post("/v1/route", json={"subject": "Photos disappeared", "customer": {}})
    assert r.status_code == 200
    d = r.json()
    for key in ("category", "team", "level", "priority", "handling", "missing", "reasons"):
        assert key in d
    assert (d["category"], d["team"], d["priority"]) == ("data_loss", "engineering", "P1")
    assert d["missing"] == ["ticket_id"]
    assert d["reasons"][0] == "category 'data_loss': the text mentions 'disappeared'"


def test_route_bad_input_is_422_field_by_field(client: TestClient) -> None:
    r = client.post(
        "/v1/route",
        json={"subject": 5, "amount": -1, "customer": {"monthly_value": "lots"}, "colour": "red"},
    )
    assert r.status_code == 422
    fields = {e["field"]: e["msg"] for e in r.json()["detail"]}
    assert set(fields) == {"subject", "amount", "customer.monthly_value", "colour"}
    assert fields["colour"] == "unknown field"


def test_route_unknown_priority_is_422(client: TestClient) -> None:
    r = client.post("/v1/route", json={"subject": "x", "priority": "urgent!!"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "priority"


def test_route_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/v1/route", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
