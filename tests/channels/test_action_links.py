"""Signed action links against a real server (uvicorn on loopback) and a plain HTTP
client: GET confirms without acting, POST acknowledges; a tampered link is refused with
403 and an expired one with 410, both recorded on the timeline."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from tests.channels.receivers import free_port

from escalade.api.app import create_app
from escalade.channels.links import ActionLinks, LinkExpired, LinkTampered, load_secret_key
from escalade.clock import SystemClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.db import SqlStore

POLICY = """
id: links
people: [{id: ana}, {id: bo}]
teams: [{id: ops}]
priorities: [{id: P1}]
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
"""
KEY = b"action-link-tests-key-0123456789"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EscalationService, ActionLinks]]:
    store = SqlStore(f"sqlite:///{tmp_path / 'e.db'}")
    store.upgrade()
    service = EscalationService(store, SystemClock())
    policy = policy_from_text(POLICY, "links.yaml")
    service.apply_policy(policy)
    service.create(EscalationInput(subject="Checkout down"), ref="OUT-1")
    port = free_port()
    links = ActionLinks(KEY, f"http://127.0.0.1:{port}")
    app = create_app(Settings(), policy, None, SystemClock(), service=service, links=links)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield service, links
    server.should_exit = True
    thread.join(timeout=10)
    store.dispose()


def _state(service: EscalationService) -> tuple[str, str | None]:
    with service.store.unit_of_work() as uow:
        esc = uow.escalations.get_by_ref("OUT-1")
        assert esc is not None
        return esc.state, esc.owner


def test_a_link_acknowledges_from_a_plain_http_client(
    served: tuple[EscalationService, ActionLinks],
) -> None:
    service, links = served
    url = links.url("OUT-1", "acknowledge", "ana", datetime.now(UTC))
    confirm = httpx.get(url)
    assert confirm.status_code == 200
    assert '<form method="post">' in confirm.text and "Acknowledge OUT-1" in confirm.text
    assert _state(service) == ("open", None)  # a GET (a link scanner) changes nothing
    done = httpx.post(url)
    assert done.status_code == 200 and "OUT-1 was acknowledged by ana" in done.text
    assert _state(service) == ("acknowledged", "ana")
    again = httpx.post(url)
    assert again.status_code == 409  # acknowledged already: refused with the reason


def test_a_link_sent_to_a_team_channel_acts_as_the_name_typed(
    served: tuple[EscalationService, ActionLinks],
) -> None:
    service, links = served
    url = links.url("OUT-1", "acknowledge", "#ops", datetime.now(UTC))
    assert 'placeholder="#ops"' in httpx.get(url).text
    done = httpx.post(url, data={"by": "bo"})
    assert done.status_code == 200 and "acknowledged by bo" in done.text
    assert _state(service) == ("acknowledged", "bo")


def test_tampered_and_expired_links_are_refused_and_recorded(
    served: tuple[EscalationService, ActionLinks],
) -> None:
    service, links = served
    token = links.token("OUT-1", "resolve", "ana", datetime.now(UTC))
    mac = token.split(".")[1]
    forged = links.token("OUT-1", "resolve", "mallory", datetime.now(UTC)).split(".")[0]
    tampered = httpx.post(f"{links.public_url}/v1/act/{forged}.{mac}")
    assert tampered.status_code == 403 and "not valid" in tampered.text
    stale = links.url("OUT-1", "resolve", "ana", datetime.now(UTC) - timedelta(days=2))
    expired = httpx.post(stale)
    assert expired.status_code == 410 and "expired at" in expired.text
    assert httpx.get(stale).status_code == 410
    assert _state(service) == ("open", None)
    with service.store.unit_of_work() as uow:
        esc = uow.escalations.get_by_ref("OUT-1")
        assert esc is not None
        on_escalation = [
            (e.kind, e.data["status"], e.data["method"])
            for e in uow.timeline.for_escalation(esc.id)
            if e.kind == "action_link.refused"
        ]
        system = [e for e in uow.timeline.after(0) if e.escalation_id is None]
    assert on_escalation == [
        ("action_link.refused", 410, "POST"),
        ("action_link.refused", 410, "GET"),
    ]
    assert [(e.kind, e.data["status"]) for e in system] == [("action_link.refused", 403)]


def test_link_tokens_check_signature_action_and_expiry() -> None:
    links = ActionLinks(KEY, "https://esc.example", ttl=timedelta(hours=1))
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    token = links.token("OUT-1", "escalate", "#ops", now)
    claims = links.check(token, now + timedelta(minutes=59))
    assert (claims.ref, claims.action, claims.to) == ("OUT-1", "escalate", "#ops")
    with pytest.raises(LinkExpired):
        links.check(token, now + timedelta(hours=1))
    with pytest.raises(LinkTampered):
        ActionLinks(b"another-key-0123456789abcdef").check(token, now)
    with pytest.raises(LinkTampered):
        links.check(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], now)
    with pytest.raises(ValueError, match="no action link for 'close'"):
        links.token("OUT-1", "close", "ana", now)


def test_the_secret_key_comes_from_the_environment_or_a_file_beside_the_database(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'esc.db'}"
    assert load_secret_key(url, {"ESCALADE_SECRET_KEY": "from-env"}) == b"from-env"
    generated = load_secret_key(url, {})
    path = tmp_path / "esc.db.secret-key"
    assert path.read_text().strip().encode() == generated and len(generated) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret_key(url, {}) == generated  # kept, not generated again
    named = tmp_path / "named.key"
    named.write_text("from-file\n")
    assert load_secret_key(url, {"ESCALADE_SECRET_KEY_FILE": str(named)}) == b"from-file"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_secret_key(url, {"ESCALADE_SECRET_KEY_FILE": str(tmp_path / "missing")})


def _slack_post(client: Any, secret: str, payload: dict[str, Any], when: float) -> Any:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(when))
    mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }
    return client.post("/v1/integrations/slack/actions", content=body, headers=headers)


def test_an_interactive_slack_button_acts_as_the_user_who_clicked(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from escalade.channels.base import Content
    from escalade.channels.slack import blocks

    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    store.upgrade()
    service = EscalationService(store, SystemClock())
    policy = policy_from_text(POLICY, "links.yaml")
    service.apply_policy(policy)
    service.create(EscalationInput(subject="Checkout down"), ref="OUT-1")
    links = ActionLinks(KEY, "https://esc.example")
    app = create_app(
        Settings(), policy, None, SystemClock(), service=service, links=links,
        slack_signing_secret="slack-secret",
    )  # fmt: skip
    client = TestClient(app)
    # the button Escalade posts to Slack carries the link's token as its value
    url = links.url("OUT-1", "acknowledge", "#ops", datetime.now(UTC))
    [button] = blocks(Content("t", "x", "OUT-1", links={"acknowledge": url}), True)[-1]["elements"]
    assert "url" not in button and url.endswith("/" + button["value"])
    click = {
        "type": "block_actions",
        "user": {"id": "U1", "username": "bo"},
        "actions": [{"action_id": button["action_id"], "value": button["value"]}],
    }
    forged = _slack_post(client, "wrong-secret", click, time.time())
    assert forged.status_code == 401
    # the one error shape of the API, naming where the problem is
    assert forged.json() == {
        "detail": [
            {
                "loc": ["header", "X-Slack-Signature"],
                "field": "X-Slack-Signature",
                "msg": "the request is not signed by Slack with this signing secret",
                "type": "unauthenticated",
            }
        ]
    }
    not_ours = _slack_post(client, "slack-secret", {"type": "block_actions"}, time.time())
    assert not_ours.status_code == 400
    assert not_ours.json()["detail"][0]["loc"] == ["body", "payload"]
    stale = _slack_post(client, "slack-secret", click, time.time() - 600)
    assert stale.status_code == 401
    assert _state(service) == ("open", None)
    done = _slack_post(client, "slack-secret", click, time.time())
    assert done.status_code == 200 and done.json()["text"].startswith(
        "OUT-1 was acknowledged by bo"
    )
    assert _state(service) == ("acknowledged", "bo")
    store.dispose()
