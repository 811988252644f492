"""Single sign-on end to end through a real OpenID Connect provider process
(``oidc-provider-mock``): the browser goes to the provider, a person signs in there, the
provider sends them back, Escalade checks the ID token and maps the provider's groups to
a role. Someone whose groups map to no role gets nothing: no session, no user."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.test_api_escalations import POLICY

from escalade.api.app import create_app
from escalade.auth.config import AuthSettings
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.memory import MemoryStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    port = _free_port()
    exe = Path(sys.executable).parent / "oidc-provider-mock"
    proc = subprocess.Popen(
        [str(exe), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("oidc-provider-mock did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def app_and_store(provider: str) -> tuple[TestClient, MemoryStore]:
    auth = AuthSettings.from_env(
        {
            "ESCALADE_OIDC_ISSUER": provider,
            "ESCALADE_OIDC_CLIENT_ID": "escalade",
            "ESCALADE_OIDC_CLIENT_SECRET": "escalade-secret",
            "ESCALADE_OIDC_GROUP_ROLES": "support-leads=lead,support=responder,ops=admin",
            "ESCALADE_OIDC_GROUP_TEAMS": "support-leads=frontline,support=frontline",
        }
    )
    store = MemoryStore()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    service = EscalationService(store, clock)
    service.apply_policy(policy_from_text(POLICY, "api-test.yaml"))
    app = create_app(Settings(), service.active.policy, None, clock, service=service, auth=auth)  # type: ignore[union-attr]
    return TestClient(app, follow_redirects=False), store


def _sign_in(
    client: TestClient, provider: str, sub: str, claims: dict[str, object]
) -> httpx.Response:
    """What a browser does: Escalade → provider's form → back to Escalade."""
    assert httpx.put(f"{provider}/users/{sub}", json=claims).status_code == 204
    start = client.get("/auth/oidc/login")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(provider)
    form = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)
    assert form.status_code == 302, form.text
    back = urlparse(form.headers["location"])
    assert back.path == "/auth/oidc/callback" and "code" in parse_qs(back.query)
    return client.get(f"{back.path}?{back.query}")


def test_a_person_signs_in_and_gets_the_role_of_their_groups(
    provider: str, app_and_store: tuple[TestClient, MemoryStore]
) -> None:
    client, store = app_and_store
    assert client.get("/v1/escalations").status_code == 401
    r = _sign_in(
        client, provider, "alice", {"email": "Alice@Example.com", "groups": ["support-leads"]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["signed_in"], body["role"], body["teams"]) == (
        "alice@example.com",
        "lead",
        ["frontline"],
    )
    assert client.get("/v1/escalations").status_code == 200
    me = client.get("/v1/session").json()
    assert me["kind"] == "user" and me["lead_of"] == ["frontline"]
    # changing requests need the session's CSRF token
    raise_it = {"subject": "A question"}
    refused = client.post("/v1/escalations", json=raise_it)
    assert refused.status_code == 403 and refused.json()["detail"][0]["type"] == "csrf"
    wrong = client.post("/v1/escalations", json=raise_it, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    made = client.post(
        "/v1/escalations", json=raise_it, headers={"X-CSRF-Token": body["csrf_token"]}
    )
    assert made.status_code == 201, made.text
    timeline = client.get(f"/v1/escalations/{made.json()['ref']}").json()["timeline"]
    assert timeline[0]["actor"] == "alice@example.com"
    # a lead is not an admin
    assert client.get("/v1/keys").status_code == 403
    with store.unit_of_work() as uow:
        user = uow.users.get_by_email("alice@example.com")
        actions = [e.action for e in uow.audit.entries()]
    assert user is not None and user.role == "lead"
    assert "user.create" in actions and "session.sign_in" in actions


def test_groups_that_map_to_no_role_get_nothing(
    provider: str, app_and_store: tuple[TestClient, MemoryStore]
) -> None:
    client, store = app_and_store
    r = _sign_in(client, provider, "mallory", {"email": "mallory@example.com", "groups": ["sales"]})
    assert r.status_code == 403
    assert r.json()["detail"][0]["type"] == "no_role"
    assert client.get("/v1/escalations").status_code == 401
    assert client.get("/v1/session").status_code == 401
    with store.unit_of_work() as uow:
        assert uow.users.get_by_email("mallory@example.com") is None
        refused = [e for e in uow.audit.entries() if e.outcome == "refused"]
    assert any("no_role" in (e.detail or "") for e in refused)


def test_a_forged_callback_is_refused(
    provider: str, app_and_store: tuple[TestClient, MemoryStore]
) -> None:
    client, _ = app_and_store
    client.get("/auth/oidc/login")
    r = client.get("/auth/oidc/callback?code=forged&state=forged")
    assert r.status_code == 401
    assert client.get("/v1/escalations").status_code == 401
