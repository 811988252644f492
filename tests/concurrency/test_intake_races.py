"""Intake under concurrency, against a real ``escalade serve`` on SQLite and PostgreSQL
(issue 15): many clients at once produce exactly the escalations one at a time would, and
never a 5xx. ``make soak`` runs the same with ten times the clients' requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from tests.keys import bearer, cli_key
from tests.soak import SCALE

N = 40 * SCALE
CLIENTS = 40

POLICY = """\
escalade: 1
id: races
teams:
  - {id: support, contacts: {email: support@example.com}}
  - {id: ops, contacts: {email: ops@example.com}}
priorities: [{id: SEV-1}, {id: SEV-2}, {id: P3}]
categories:
  - {id: general, owner: support}
  - {id: outage, owner: ops}
routing: {default_category: general, default_priority: P3}
alerts: {category: outage, severity: {critical: SEV-1}}
triggers:
  - id: same-customer
    kind: threshold
    threshold: {related: customer, more_than: 2, window: 1h}
    then: {priority: SEV-2}
  - id: mass-deletion
    kind: threshold
    threshold: {activity: record.deleted, more_than: 3, window: 1d}
    then: {category: general, priority: SEV-2}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(NamedTuple):
    url: str
    headers: dict[str, str]  # an admin key's, made with ``escalade keys create``


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    policy = tmp_path / "races.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = {**os.environ, "ESCALADE_DATABASE_URL": db_url}
    cli = [sys.executable, "-m", "escalade.cli.main"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    headers = bearer(cli_key(env, "races"))
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*cli, "serve", "--policy", str(policy), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "serve.log").read_text())
            time.sleep(0.1)
        yield Server(base, headers)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def _at_once(n: int, send: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``n`` requests from ``CLIENTS`` threads, released together."""
    gate = threading.Barrier(min(n, CLIENTS))

    def one(i: int) -> httpx.Response:
        if i < CLIENTS:
            gate.wait(30)
        return send(i)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(n)))


def _codes(responses: list[httpx.Response]) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in responses:
        out[r.status_code] = out.get(r.status_code, 0) + 1
    return out


def _escalations(server: Server) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.url}/v1/escalations",
        params={"limit": 1000},
        headers=server.headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


def test_the_same_alert_at_once_opens_one_escalation(server: Server) -> None:
    body = {"source": "am", "key": "DiskFull/db1", "severity": "critical", "summary": "Disk"}
    responses = _at_once(
        N,
        lambda i: httpx.post(
            f"{server.url}/v1/alerts", json=body, headers=server.headers, timeout=120
        ),
    )
    assert _codes(responses) == {200: N}
    refs = {r.json()["escalation"]["ref"] for r in responses}
    assert len(refs) == 1
    assert [e["ref"] for e in _escalations(server)] == list(refs)


def test_creates_for_one_customer_at_once_are_all_kept_and_make_one_incident(
    server: Server,
) -> None:
    def create(i: int) -> httpx.Response:
        body = {"subject": f"Problem {i}", "customer": {"email": "ana@example.com"}}
        return httpx.post(
            f"{server.url}/v1/escalations", json=body, headers=server.headers, timeout=120
        )

    responses = _at_once(N, create)
    assert _codes(responses) == {201: N}
    rows = _escalations(server)
    incidents = [e for e in rows if e["subject"].startswith("Incident:")]
    assert len(incidents) == 1
    assert len(rows) == N + 1
    tickets = [e for e in rows if e not in incidents]
    assert {e["subject"] for e in tickets} == {f"Problem {i}" for i in range(N)}
    timeline = httpx.get(
        f"{server.url}/v1/escalations/{incidents[0]['ref']}", headers=server.headers, timeout=30
    ).json()
    linked = {
        ref for e in timeline["timeline"] if e["type"] == "trigger.fired" for ref in e["refs"]
    }
    assert linked == {e["ref"] for e in tickets}


def test_creates_with_one_ref_at_once_give_one_201_and_409s(server: Server) -> None:
    def create(i: int) -> httpx.Response:
        body = {"ref": "TICKET-7", "subject": f"Attempt {i}"}
        return httpx.post(
            f"{server.url}/v1/escalations", json=body, headers=server.headers, timeout=120
        )

    responses = _at_once(N, create)
    assert _codes(responses) == {201: 1, 409: N - 1}
    assert [e["ref"] for e in _escalations(server)] == ["TICKET-7"]


def test_activity_crossing_a_threshold_at_once_opens_one_escalation(server: Server) -> None:
    body = {"actor": "u1", "action": "record.deleted"}
    responses = _at_once(
        N,
        lambda i: httpx.post(
            f"{server.url}/v1/activity", json=body, headers=server.headers, timeout=120
        ),
    )
    assert _codes(responses) == {200: N}
    created = [e["ref"] for r in responses for e in r.json()["created"]]
    assert len(created) == 1
    assert [e["ref"] for e in _escalations(server)] == created
