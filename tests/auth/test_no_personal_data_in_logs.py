"""``escalade serve`` writes no e-mail address, phone number or secret to its logs: a
real server is sent requests that carry them (in the body, the query string and the
Authorization header) and notifications go to e-mail recipients; then its whole log is
searched."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.test_api_escalations import POLICY

from escalade.logredact import RedactPersonalData, redact
from escalade.store.db import SqlStore

ESCALADE = [sys.executable, "-m", "escalade.cli.main"]
EMAIL, PHONE = "ana.customer@example.com", "+44 20 7946 0958"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_masks() -> None:
    line = f"to {EMAIL} or {PHONE} / (555) 123-4567 with esk_abc-DEF_1 and Bearer x.y"
    assert redact(line) == "to [email] or [phone] / [phone] with esk_[secret] and Bearer [secret]"
    kept = "ESC-12 due 2026-03-02 12:00:00 (P1, 4h, 1234567)"
    assert redact(kept) == kept
    record = logging.LogRecord("x", logging.INFO, "f", 1, "sent to %s (%d)", (EMAIL, 3), None)
    assert RedactPersonalData().filter(record) and record.getMessage() == "sent to [email] (3)"


def test_a_served_request_leaves_no_personal_data_in_the_log(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    env = {**os.environ, "ESCALADE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    subprocess.run([*ESCALADE, "db", "upgrade"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [*ESCALADE, "keys", "create", "--name", "k", "--scope", "read,write"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = made.stdout.strip()
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*ESCALADE, "serve", "--policy", str(policy), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(log.read_text()) from None
                    time.sleep(0.2)
            auth = {"Authorization": f"Bearer {key}"}
            r = httpx.post(
                f"{base}/v1/escalations",
                headers=auth,
                json={
                    "subject": f"Question from {EMAIL}, call {PHONE}",
                    "customer": {"email": EMAIL, "phone": PHONE},
                },
            )
            assert r.status_code == 201, r.text
            httpx.get(f"{base}/v1/escalations", params={"team": EMAIL}, headers=auth)
            httpx.get(f"{base}/v1/escalations", headers={"Authorization": f"Bearer {key}x"})
            time.sleep(2)  # the engine delivers the notifications (logged)
        finally:
            server.terminate()
            server.wait(timeout=20)
    text = log.read_text()
    assert "notification" in text  # notifications were logged …
    assert '"GET /v1/escalations?team=[email] HTTP/1.1" 200' in text  # … and requests
    assert "Logging error" not in text and "Traceback" not in text
    for secret in (EMAIL, "ana.customer%40example.com", PHONE, "7946", key, "spec@example.com"):
        assert secret not in text, secret
    # serve made the policy active: that is audited too
    store = SqlStore(env["ESCALADE_DATABASE_URL"])
    with store.unit_of_work() as uow:
        applied = [e for e in uow.audit.entries() if e.action == "policy.apply"]
    store.dispose()
    assert [(e.actor, e.before, e.after) for e in applied] == [
        ("cli:serve", {"version": None}, {"version": 1})
    ]
