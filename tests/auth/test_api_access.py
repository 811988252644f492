"""Every endpoint but /healthz needs a key with the right scope; refusals are 401/403 in
the one JSON error shape and land in the audit log; keys are revocable and record their
last use; people, keys and teams over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key
from tests.test_api_escalations import POLICY

from escalade.api.app import PUBLIC_OPERATIONS, create_app
from escalade.auth.audit import verify
from escalade.channels.links import ActionLinks
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.memory import MemoryStore

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)

# Every operation of the API, with the scope it needs. A new endpoint missing here fails
# test_the_table_lists_every_operation.
OPERATIONS: list[tuple[str, str, str, object]] = [
    ("POST", "/v1/escalations", "write", {"subject": "x"}),
    ("GET", "/v1/escalations", "read", None),
    ("GET", "/v1/escalations/T-1", "read", None),
    ("GET", "/v1/escalations/T-1/deliveries", "read", None),
    ("POST", "/v1/escalations/T-1/actions", "write", {"action": "comment", "text": "x"}),
    (
        "POST",
        "/v1/escalations/T-1/authority-actions",
        "write",
        {"action": "password_reset"},
    ),
    ("POST", "/v1/alerts", "intake", {"key": "k"}),
    ("POST", "/v1/activity", "intake", {"actor": "u", "action": "a"}),
    ("POST", "/api/v2/alerts", "intake", [{"labels": {"alertname": "A"}}]),
    (
        "POST",
        "/v1/integrations/alertmanager",
        "intake",
        {
            "version": "4",
            "groupKey": "g",
            "status": "firing",
            "alerts": [{"status": "firing", "labels": {"alertname": "A"}}],
        },
    ),
    ("POST", "/v1/integrations/webhook/{name}", "intake", {}),
    ("GET", "/v1/policy", "read", None),
    ("POST", "/v1/policies/validate", "read", {"content": "id: x"}),
    ("GET", "/v1/policies", "read", None),
    ("POST", "/v1/policies", "admin", {"content": "id: x"}),  # an editing right
    ("GET", "/v1/policies/diff?from=1&to=1", "read", None),
    ("GET", "/v1/policies/1", "read", None),
    ("GET", "/v1/keys", "admin", None),
    ("POST", "/v1/keys", "admin", {"name": "n", "scopes": ["read"]}),
    ("DELETE", "/v1/keys/nope", "admin", None),
    ("GET", "/v1/users", "admin", None),
    ("POST", "/v1/users", "admin", {"email": "a@b.co", "role": "viewer"}),
    ("POST", "/v1/users/a@b.co/disable", "admin", None),
    ("POST", "/v1/users/a@b.co/enable", "admin", None),
    ("GET", "/v1/teams", "read", None),
    ("GET", "/v1/schedules", "read", None),
    ("GET", "/v1/schedules/none", "read", None),
    ("GET", "/v1/schedules/none/oncall", "read", None),
    ("GET", "/v1/schedules/none/overrides", "read", None),
    # and the editing right, checked once the schedule is known (tests/auth/test_schedules_api.py)
    ("POST", "/v1/schedules/none/overrides", "write", {"person": "a"}),
    ("DELETE", "/v1/schedules/none/overrides/1", "write", None),
    ("GET", "/v1/session", "any", None),
    ("DELETE", "/v1/session", "read", None),
    ("GET", "/metrics", "read", None),
    ("POST", "/v1/route", "read", {"subject": "x"}),
]
# probes, signing in, and the endpoints whose request carries its own credential: a signed
# action link, a request signed by Slack, a PagerDuty event (its routing_key is the intake
# key: tests/intake/test_intake_api.py)
PUBLIC = {
    ("POST", "/v2/enqueue"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/v1/session"),
    ("GET", "/v1/act/{token}"),
    ("POST", "/v1/act/{token}"),
    ("POST", "/v1/integrations/slack/actions"),
}
SCOPES = ["read", "write", "intake", "admin"]


@pytest.fixture
def setup() -> tuple[TestClient, MemoryStore, VirtualClock]:
    store = MemoryStore()
    clock = VirtualClock(T0)
    service = EscalationService(store, clock)
    service.apply_policy(policy_from_text(POLICY, "api-test.yaml"))
    app = create_app(
        Settings(),
        service.active.policy,  # type: ignore[union-attr]
        None,
        clock,
        service=service,
        links=ActionLinks(b"action-link-key-for-tests"),
        slack_signing_secret="slack-signing-secret",
    )
    client = TestClient(app)
    admin = issue_key(store, "admin", name="boot")
    client.post("/v1/escalations", json={"ref": "T-1", "subject": "q"}, headers=bearer(admin))
    return client, store, clock


def _call(client: TestClient, method: str, url: str, body: object, headers: dict[str, str]) -> int:
    return client.request(method, url, json=body, headers=headers).status_code


def test_the_table_lists_every_operation(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
) -> None:
    client, _, _ = setup
    spec = client.get("/openapi.json").json()
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    listed = {(m, u.split("?")[0].replace("T-1", "{ref}")) for m, u, _, _ in OPERATIONS}
    listed = {(m, u.replace("/v1/keys/nope", "/v1/keys/{name}")) for m, u in listed}
    listed = {(m, u.replace("/v1/policies/1", "/v1/policies/{version}")) for m, u in listed}
    listed = {(m, u.replace("/a@b.co/", "/{email}/")) for m, u in listed}
    listed = {(m, u.replace("/none", "/{name}")) for m, u in listed}
    listed = {(m, u.replace("/overrides/1", "/overrides/{override_id}")) for m, u in listed}
    assert ops == listed | PUBLIC
    assert PUBLIC <= PUBLIC_OPERATIONS  # and only those (with OIDC's) need no credentials
    assert {
        ("GET", "/auth/oidc/login"),
        ("GET", "/auth/oidc/callback"),
    } == PUBLIC_OPERATIONS - PUBLIC


@pytest.mark.parametrize(("method", "url", "scope", "body"), OPERATIONS)
def test_every_endpoint_refuses_without_a_key(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
    method: str,
    url: str,
    scope: str,
    body: object,
) -> None:
    client, _, _ = setup
    for headers in (
        {},
        {"Authorization": "Bearer esk_not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ):
        r = client.request(method, url, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        [item] = r.json()["detail"]
        assert item["type"] == "unauthenticated" and item["msg"]
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "url", "scope", "body"), OPERATIONS)
def test_every_endpoint_refuses_the_wrong_scope(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
    method: str,
    url: str,
    scope: str,
    body: object,
) -> None:
    client, store, _ = setup
    for held in SCOPES:
        key = issue_key(store, held, name=f"k-{held}")
        status = _call(client, method, url, body, bearer(key))
        allowed = scope == "any" or held in (scope, "admin")
        if allowed:
            assert status not in (401, 403), (held, status)
        else:
            assert status == 403, (held, status)


def test_intake_takes_only_intake_and_admin_keys(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
) -> None:
    client, store, _ = setup
    intake = issue_key(store, "intake", name="am")
    r = client.post("/v1/alerts", json={"key": "a", "severity": "critical"}, headers=bearer(intake))
    assert r.status_code == 200
    assert client.get("/v1/escalations", headers=bearer(intake)).status_code == 403
    rw = issue_key(store, "read", "write", name="rw")
    r = client.post("/v1/alerts", json={"key": "b"}, headers=bearer(rw))
    assert r.status_code == 403
    assert r.json()["detail"][0]["needed"] == "intake"


def test_refusals_are_audited_with_who_and_where(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
) -> None:
    client, store, _ = setup
    reader = issue_key(store, "read", name="reader")
    client.get("/v1/escalations")
    client.post("/v1/escalations", json={"subject": "x"}, headers=bearer(reader))
    with store.unit_of_work() as uow:
        refused = [e for e in uow.audit.entries() if e.outcome == "refused"]
    assert [(e.actor, e.action, e.address) for e in refused] == [
        ("anonymous", "GET /v1/escalations", "testclient"),
        ("key:reader", "POST /v1/escalations", "testclient"),
    ]
    assert "401" in (refused[0].detail or "") and "403" in (refused[1].detail or "")
    assert verify(store)[1] == []


def test_a_revoked_key_is_refused_from_the_next_request(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
) -> None:
    client, store, clock = setup
    admin = bearer(issue_key(store, "admin", name="root"))
    made = client.post("/v1/keys", json={"name": "ci", "scopes": ["read"]}, headers=admin)
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert client.get("/v1/escalations", headers=bearer(secret)).status_code == 200
    listed = {k["name"]: k for k in client.get("/v1/keys", headers=admin).json()}
    assert "secret" not in listed["ci"] and listed["ci"]["last_used_at"] == "2026-03-02T12:00:00Z"
    clock.advance(timedelta(minutes=5))
    client.get("/v1/escalations", headers=bearer(secret))
    listed = {k["name"]: k for k in client.get("/v1/keys", headers=admin).json()}
    assert listed["ci"]["last_used_at"] == "2026-03-02T12:05:00Z"
    assert client.delete("/v1/keys/ci", headers=admin).status_code == 200
    r = client.get("/v1/escalations", headers=bearer(secret))
    assert r.status_code == 401 and "revoked" in r.json()["detail"][0]["msg"]
    assert client.delete("/v1/keys/nope", headers=admin).status_code == 404
    dup = client.post("/v1/keys", json={"name": "ci", "scopes": ["read"]}, headers=admin)
    assert dup.status_code == 409
    bad = client.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=admin)
    assert bad.status_code == 422 and "unknown scope 'root'" in bad.json()["detail"][0]["msg"]


def test_only_a_hash_of_a_key_is_stored(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
) -> None:
    _, store, _ = setup
    secret = issue_key(store, "read", name="hashed")
    with store.unit_of_work() as uow:
        row = uow.api_keys.get("hashed")
    assert row is not None and secret not in repr(row) and len(row.secret_hash) == 64


def test_users_and_teams_over_http(setup: tuple[TestClient, MemoryStore, VirtualClock]) -> None:
    client, store, _ = setup
    admin = bearer(issue_key(store, "admin", name="root"))
    r = client.post(
        "/v1/users",
        json={
            "email": "Lena@Example.com",
            "role": "lead",
            "teams": ["frontline"],
            "password": "correct horse battery",
        },
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["email"] == "lena@example.com"
    assert "argon2" not in str(client.get("/v1/users", headers=admin).json())
    bad = client.post("/v1/users", json={"email": "x@y.co", "role": "boss"}, headers=admin)
    assert bad.status_code == 422 and "unknown role 'boss'" in bad.json()["detail"][0]["msg"]
    teams = client.get("/v1/teams", headers=admin).json()
    assert [t["id"] for t in teams] == ["frontline", "specialists"]
    with store.unit_of_work() as uow:
        actions = [e.action for e in uow.audit.entries() if e.outcome == "ok"]
    assert "user.create" in actions and "key.create" in actions


def test_metrics_in_prometheus_format(setup: tuple[TestClient, MemoryStore, VirtualClock]) -> None:
    client, store, _ = setup
    reader = bearer(issue_key(store, "read", name="prometheus"))
    client.get("/v1/escalations", headers=reader)
    client.get("/v1/escalations")
    r = client.get("/metrics", headers=reader)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'escalade_http_requests_total{method="GET",route="/v1/escalations",status="200"} 1.0'
        in text
    )
    assert 'route="/v1/escalations",status="401"} 1.0' in text
    assert "escalade_audit_entries " in text
    assert "escalade_escalations" not in text  # no counts that would tell of hidden ones


def test_a_session_signs_out(setup: tuple[TestClient, MemoryStore, VirtualClock]) -> None:
    client, store, _ = setup
    admin = bearer(issue_key(store, "admin", name="root"))
    client.post(
        "/v1/users",
        json={"email": "v@example.com", "role": "viewer", "password": "a long enough password"},
        headers=admin,
    )
    signed = client.post(
        "/v1/session", json={"email": "v@example.com", "password": "a long enough password"}
    )
    assert signed.status_code == 200 and signed.json()["scopes"] == ["read"]
    assert client.get("/v1/escalations").status_code == 200
    assert client.post("/v1/escalations", json={"subject": "x"}).status_code == 403  # csrf
    csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
    assert client.post("/v1/escalations", json={"subject": "x"}, headers=csrf).status_code == 403
    assert client.delete("/v1/session", headers=csrf).status_code == 200
    assert client.get("/v1/escalations").status_code == 401
    wrong = client.post("/v1/session", json={"email": "v@example.com", "password": "nope"})
    assert wrong.status_code == 401


def test_a_write_that_meets_a_concurrent_update_is_tried_again() -> None:
    from escalade.api.escalations import _retrying
    from escalade.service.escalations import RETRIES
    from escalade.store import ConcurrentUpdate, TransientConflict

    calls: list[int] = []

    def flaky() -> object:
        calls.append(1)
        if len(calls) < 3:
            raise (ConcurrentUpdate if len(calls) == 1 else TransientConflict)("changed")
        return "done"

    assert _retrying(flaky) == "done" and len(calls) == 3  # type: ignore[arg-type, comparison-overlap]

    def never() -> object:
        calls.append(1)
        raise ConcurrentUpdate("changed")

    calls.clear()
    with pytest.raises(ConcurrentUpdate):
        _retrying(never)  # type: ignore[arg-type]
    assert len(calls) == RETRIES


def test_a_write_that_loses_every_race_is_503_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """As for the service's own units of work (store/availability.py): 'busy', retry."""
    from escalade.service.escalations import RETRIES
    from escalade.store import ConcurrentUpdate

    store = MemoryStore()
    service = EscalationService(store, VirtualClock(T0))
    service.apply_policy(policy_from_text(POLICY, "api-test.yaml"))
    app = create_app(Settings(), service.active.policy, None, service.clock, service=service)  # type: ignore[union-attr]
    client = TestClient(app, headers=bearer(issue_key(store, "admin", name="boot")))
    assert client.post("/v1/escalations", json={"ref": "T-1", "subject": "q"}).status_code == 201
    calls: list[int] = []

    def lost(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise ConcurrentUpdate("escalation T-1 changed under this unit of work")

    monkeypatch.setattr(service, "act", lost)
    r = client.post("/v1/escalations/T-1/actions", json={"action": "comment", "text": "x"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    assert r.json()["detail"][0]["type"] == "database_busy"
    assert len(calls) == RETRIES


def test_a_disabled_user_loses_their_session_and_cannot_sign_in(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
) -> None:
    client, store, _ = setup
    admin = bearer(issue_key(store, "admin", name="root"))
    person = {"email": "d@example.com", "password": "a long enough password"}
    client.post("/v1/users", json={**person, "role": "responder"}, headers=admin)
    browser = TestClient(client.app)
    assert browser.post("/v1/session", json=person).status_code == 200
    assert browser.get("/v1/escalations").status_code == 200
    r = client.post("/v1/users/D@example.com/disable", headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert browser.get("/v1/escalations").status_code == 401
    assert browser.post("/v1/session", json=person).status_code == 401
    assert client.post("/v1/users/nobody@example.com/disable", headers=admin).status_code == 404
    assert client.post("/v1/users/d@example.com/enable", headers=admin).status_code == 200
    assert browser.post("/v1/session", json=person).status_code == 200
    with store.unit_of_work() as uow:
        actions = [e.action for e in uow.audit.entries()]
    assert "user.disable" in actions and "user.enable" in actions


def test_an_anonymous_caller_learns_nothing_from_a_bad_body(
    setup: tuple[TestClient, MemoryStore, VirtualClock],
) -> None:
    client, store, _ = setup
    for content in (b"{not json", b"\xff\xfe\x00", b'{"subject": 5}'):
        r = client.post(
            "/v1/escalations", content=content, headers={"content-type": "application/json"}
        )
        assert r.status_code == 401, (content, r.text)
    key = bearer(issue_key(store, "write", name="w"))
    r = client.post(
        "/v1/escalations",
        content=b"{not json",
        headers={**key, "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    # signing in is public: its bad bodies are 422
    assert client.post("/v1/session", content=b"{x", headers=key).status_code == 422
