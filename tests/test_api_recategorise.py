"""``recategorise`` over HTTP (issue 17): ``POST /v1/escalations/{ref}/actions`` with
``category``; the write scope; where the policy's authority matrix has a ``recategorise``
action, a hat it allows (403 naming the rule otherwise, audited); bad categories 409."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.db import SqlStore

POLICY = """
id: recat-api
levels: [{id: L1, team: frontline}, {id: L2, team: billing}, {id: L3, team: security}]
teams:
  - {id: frontline, level: L1}
  - {id: billing, level: L2}
  - {id: security, level: L3}
priorities: [{id: P1, response: 1h}, {id: P2, response: 4h}]
categories:
  - {id: billing_issue, owner: billing, match: {phrases: [invoice]}}
  - {id: account_takeover, owner: security, priority: P1}
routing: {default_priority: P2, default_category: billing_issue}
"""

MATRIX = """
authority:
  columns: [frontline, billing, security]
  actions:
    - {id: recategorise, name: Re-categorise, allow: [billing, security]}
"""


def _app(tmp_path: Path, text: str) -> tuple[TestClient, SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.upgrade()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    service = EscalationService(store, clock)
    service.apply_policy(policy_from_text(text, "recat.yaml"))
    app = create_app(Settings(), service.active.policy, None, clock, service=service)  # type: ignore[union-attr]
    client = TestClient(app, headers=bearer(issue_key(store, "admin", name="boot")))
    made = client.post("/v1/escalations", json={"ref": "E1", "subject": "Odd invoice"})
    assert made.status_code == 201, made.text
    return client, store


@pytest.fixture
def plain(tmp_path: Path) -> tuple[TestClient, SqlStore]:
    return _app(tmp_path, POLICY)


def _act(client: TestClient, key: str, **body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = client.post(
        "/v1/escalations/E1/actions", json={"action": "recategorise", **body}, headers=bearer(key)
    )
    return r.status_code, r.json()


def test_a_write_key_recategorises_and_the_timeline_says_so(
    plain: tuple[TestClient, SqlStore],
) -> None:
    client, store = plain
    code, view = _act(
        client, issue_key(store, "read", "write"), category="account_takeover", reason="hacked"
    )
    assert code == 200, view
    assert (view["category"], view["team"], view["priority"]) == (
        "account_takeover", "security", "P1",
    )  # fmt: skip
    timeline = client.get("/v1/escalations/E1").json()["timeline"]
    entry = next(e for e in timeline if e["type"] == "escalation.recategorised")
    assert entry["from"] == "billing_issue" and entry["to"] == "account_takeover"
    assert entry["reason"] == "hacked"


def test_a_read_key_may_not(plain: tuple[TestClient, SqlStore]) -> None:
    client, store = plain
    code, _ = _act(client, issue_key(store, "read"), category="account_takeover")
    assert code == 403
    assert client.get("/v1/escalations/E1").json()["category"] == "billing_issue"


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ({}, "recategorise needs 'category'"),
        ({"category": "refunds"}, "'refunds' is not a category of policy 'recat-api'"),
        ({"category": "billing_issue"}, "it is already in category 'billing_issue'"),
    ],
)
def test_a_bad_category_is_409_with_the_reason(
    plain: tuple[TestClient, SqlStore], body: dict[str, str], msg: str
) -> None:
    client, store = plain
    code, answer = _act(client, issue_key(store, "write"), **body)
    assert code == 409
    assert answer["detail"][0]["msg"].startswith(msg), answer


def test_the_authority_matrix_decides_where_it_has_a_recategorise_action(
    tmp_path: Path,
) -> None:
    client, store = _app(tmp_path, POLICY + MATRIX)
    code, answer = _act(
        client, issue_key(store, "read", "write", teams=["frontline"]), category="account_takeover"
    )
    # a frontline key does not see a billing escalation at all: 404, as if unknown
    assert code == 404, answer
    code, answer = _act(client, issue_key(store, "read", "write"), category="account_takeover")
    assert code == 403, answer
    assert answer["detail"][0]["type"] == "authority_refused"
    assert answer["detail"][0]["rule"] == "authority.recategorise"
    assert client.get("/v1/escalations/E1").json()["category"] == "billing_issue"
    code, view = _act(
        client, issue_key(store, "read", "write", teams=["billing"]), category="account_takeover"
    )
    assert code == 200, view
    # now Security's: the billing key no longer sees what it holds; the admin key does
    assert client.get("/v1/escalations/E1").json()["category"] == "account_takeover"
    with store.unit_of_work(readonly=True) as uow:
        entries = [e for e in uow.audit.entries(limit=10_000) if e.target == "escalation:E1"]
    assert [(e.action, e.outcome) for e in entries if e.action == "escalation.recategorise"] == [
        ("escalation.recategorise", "refused"),
        ("escalation.recategorise", "ok"),
    ]
