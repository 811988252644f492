"""Confidentiality, every cell: principals × confidential kinds × endpoints. A hidden
escalation is missing from lists (whatever the filters) and answers 404, exactly as an
unknown one, to reads, actions and authority actions; so nobody learns it exists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.auth.config import AuthSettings
from escalade.auth.ratelimit import Limit
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store import Store
from escalade.store.db import SqlStore

POLICY = """
id: confidential-test
levels:
  - {id: L1, team: frontline}
  - {id: L2, team: legal}
roles:
  - {id: general_counsel}
  - {id: ciso}
people:
  - {id: gina, roles: [general_counsel], contacts: {email: gina@example.com}}
  - {id: sid, roles: [ciso]}
teams:
  - {id: frontline, level: L1}
  - {id: legal, level: L2}
  - {id: security, level: L2}
  - {id: fraud, level: L2}
priorities:
  - {id: P2, response: 4h}
handling:
  - {id: security-eyes-only, kind: confidential, visible_to: [ciso]}
  - {id: fraud-quiet, kind: no_customer_alert, visible_to: [security]}
categories:
  - {id: general, owner: frontline, match: {phrases: [question]}}
  - id: legal_threat
    owner: legal
    confidential: true
    visible_to: [general_counsel]
    match: {phrases: [lawyer]}
  - id: security_report
    owner: security
    handling: [security-eyes-only]
    match: {phrases: [vulnerability]}
  - {id: fraud_report, owner: fraud, handling: [fraud-quiet], match: {phrases: [scam]}}
routing:
  default_priority: P2
  default_category: general
  rules:
    - id: marked
      when: {tags: [sensitive]}
      then: {handling: [security-eyes-only]}
authority:
  columns: [frontline, legal, security, fraud]
  actions:
    - {id: password_reset, allow: [frontline, legal, security, fraud]}
"""

# kind → the escalation raised for it
KINDS = {
    "plain": {"ref": "PLAIN", "subject": "A question"},
    "legal": {"ref": "LEGAL", "subject": "My lawyer will call"},
    "security": {"ref": "SEC", "subject": "A vulnerability in login"},
    "fraud": {"ref": "FRAUD", "subject": "This is a scam"},
    "marked": {"ref": "MARKED", "subject": "A question", "tags": ["sensitive"]},
}

# principal → the kinds it may see
SEES = {
    "admin key": {"plain"},
    "read-write key": {"plain"},
    "key limited to legal": {"legal"},
    "key limited to frontline": {"plain", "marked"},
    "frontline responder": {"plain", "marked"},
    "general counsel (policy person)": {"plain", "legal"},
    "security responder": {"plain", "security", "fraud"},
    "ciso (policy person)": {"plain", "security", "marked"},
    "admin user": {"plain"},
}

USERS = {
    "frontline responder": ("fl@example.com", "responder", ["frontline"], None),
    "general counsel (policy person)": ("gina@example.com", "responder", [], None),
    "security responder": ("sec@example.com", "responder", ["security"], None),
    "ciso (policy person)": ("sid@example.com", "responder", [], "sid"),
    "admin user": ("root@example.com", "admin", [], None),
}


@pytest.fixture(scope="module")
def clients(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[TestClient, dict[str, str]]]:
    # a real SQLite database: a hidden escalation's refusal is audited after the unit of
    # work that found it, never inside it (SQLite has one writer)
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('conf') / 'db.sqlite'}")
    store.upgrade()
    STORES["store"] = store
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    service = EscalationService(store, clock)
    service.apply_policy(policy_from_text(POLICY, "confidential.yaml"))
    auth = AuthSettings(signin_per_address=Limit(1000, 1000))
    app = create_app(Settings(), service.active.policy, None, clock, service=service, auth=auth)  # type: ignore[union-attr]
    boot = TestClient(app, headers=bearer(issue_key(store, "admin", name="boot")))
    for body in KINDS.values():
        assert boot.post("/v1/escalations", json=body).status_code == 201
    out: dict[str, tuple[TestClient, dict[str, str]]] = {
        "admin key": (TestClient(app), bearer(issue_key(store, "admin"))),
        "read-write key": (TestClient(app), bearer(issue_key(store, "read", "write"))),
        "key limited to legal": (
            TestClient(app),
            bearer(issue_key(store, "read", "write", teams=["legal"])),
        ),
        "key limited to frontline": (
            TestClient(app),
            bearer(issue_key(store, "read", "write", teams=["frontline"])),
        ),
    }
    for label, (email, role, teams, person) in USERS.items():
        made = boot.post(
            "/v1/users",
            json={
                "email": email,
                "role": role,
                "teams": teams,
                "person": person,
                "password": "a long enough password",
            },
        )
        assert made.status_code == 201, made.text
        client = TestClient(app)
        signed = client.post(
            "/v1/session", json={"email": email, "password": "a long enough password"}
        )
        assert signed.status_code == 200
        out[label] = (client, {"X-CSRF-Token": signed.json()["csrf_token"]})
    return out


CELLS = [(who, kind) for who in SEES for kind in KINDS]
STORES: dict[str, Store] = {}


def test_the_matrix_covers_every_principal() -> None:
    assert set(SEES) == {
        "admin key",
        "read-write key",
        "key limited to legal",
        "key limited to frontline",
        *USERS,
    }


@pytest.mark.parametrize("who", list(SEES))
def test_lists_show_only_what_may_be_seen(
    clients: dict[str, tuple[TestClient, dict[str, str]]], who: str
) -> None:
    client, headers = clients[who]
    wanted = {KINDS[k]["ref"] for k in SEES[who]}
    listed = client.get("/v1/escalations", headers=headers)
    assert listed.status_code == 200
    assert {e["ref"] for e in listed.json()} == wanted
    for params in (
        {"category": "legal_threat"},
        {"team": "security"},
        {"state": ["open"]},
        {"limit": 1},
    ):
        page = client.get("/v1/escalations", params=params, headers=headers).json()
        assert {e["ref"] for e in page} <= wanted, params
    # walking the pages with the cursor finds exactly the same
    seen, cursor = set(), None
    while True:
        params2: dict[str, object] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        r = client.get("/v1/escalations", params=params2, headers=headers)
        seen |= {e["ref"] for e in r.json()}
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert seen == wanted


@pytest.mark.parametrize(("who", "kind"), CELLS)
def test_reads_and_actions_answer_404_for_hidden_ones(
    clients: dict[str, tuple[TestClient, dict[str, str]]], who: str, kind: str
) -> None:
    client, headers = clients[who]
    ref = KINDS[kind]["ref"]
    visible = kind in SEES[who]
    calls = [
        ("GET", f"/v1/escalations/{ref}", None),
        ("GET", f"/v1/escalations/{ref}/deliveries", None),
        ("POST", f"/v1/escalations/{ref}/actions", {"action": "comment", "text": "hi"}),
        ("POST", f"/v1/escalations/{ref}/authority-actions", {"action": "password_reset"}),
    ]
    for method, url, body in calls:
        r = client.request(method, url, json=body, headers=headers)
        if visible:
            assert r.status_code in (200, 403), (method, url, r.text)
            if r.status_code == 403:
                assert r.json()["detail"][0]["type"] == "authority_refused"
        else:
            assert r.status_code == 404, (method, url, r.text)
            unknown = client.request(
                method, url.replace(ref, "NO-SUCH"), json=body, headers=headers
            )
            assert r.json()["detail"][0]["msg"].replace(ref, "X") == unknown.json()["detail"][0][
                "msg"
            ].replace("NO-SUCH", "X")


def test_a_creator_who_may_not_see_it_learns_only_the_ref(
    clients: dict[str, tuple[TestClient, dict[str, str]]],
) -> None:
    client, headers = clients["read-write key"]
    r = client.post("/v1/escalations", json={"subject": "lawyer letter"}, headers=headers)
    assert r.status_code == 201
    assert set(r.json()) == {"ref", "confidential"}


def test_hidden_attempts_are_audited(
    clients: dict[str, tuple[TestClient, dict[str, str]]],
) -> None:
    client, headers = clients["read-write key"]
    assert client.get("/v1/escalations/LEGAL", headers=headers).status_code == 404
    with STORES["store"].unit_of_work() as uow:
        last = uow.audit.entries(limit=100_000)[-1]
    assert (last.actor, last.target, last.outcome) == (
        "key:test-read-write-all",
        "escalation:LEGAL",
        "refused",
    )
    assert "hidden" in (last.detail or "")
