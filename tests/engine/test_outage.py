"""The database goes away under a running ``escalade serve`` and ``escalade worker`` (real
processes) and comes back.

PostgreSQL is reached through a TCP proxy this test stops and starts (the shared server is
never touched); SQLite is made busy by another connection holding an exclusive lock.
While it is gone: every write answers 503 with ``Retry-After`` in the one error shape,
``/readyz`` answers 503, ``/healthz`` stays 200, and the engines back off and say so once.
After it returns: every escalation that was accepted (201) is stored, and every ladder step
of every stored escalation is notified exactly once; nothing else ever answered a 5xx.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tests.conftest import _pg_schema_url
from tests.keys import bearer, cli_key
from tests.tcp_proxy import TcpProxy

from escalade.store.db import SqlStore

POLICY = """
id: outage-ladder
people: [{id: ana}, {id: bo}, {id: cy}]
teams: [{id: ops, contacts: {chat: "#ops"}}]
priorities: [{id: P1, ladder: fast, notify: post}]
ladders:
  - id: fast
    steps:
      - {after: 0s, notify: [{person: ana}], channel: sms, unless: []}
      - {after: 1s, notify: [{person: bo}], channel: sms, unless: []}
      - {after: 2s, notify: [{person: cy}], channel: sms, unless: []}
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
"""
NOTICES_PER_ESCALATION = 4  # the creation notice and three ladder steps
OUTAGE_SECONDS = 2.5
BUSY_TIMEOUT_MS = 1000


class Process:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "escalade.cli.main", *args],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _sqlite_locked(path: str) -> Iterator[None]:
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, Callable[[], AbstractContextManager[None]]]]:
    """(URL for the test, URL for serve and worker, a context that takes the database away)."""
    if request.param == "sqlite":
        path = str(tmp_path / "outage.db")
        url = f"sqlite:///{path}"
        yield url, url, lambda: _sqlite_locked(path)
        return
    base = request.getfixturevalue("pg_base_url")
    real = make_url(base)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    proxy.start()

    @contextmanager
    def taken_away() -> Iterator[None]:
        proxy.stop()
        try:
            yield
        finally:
            proxy.start()

    try:
        for url in _pg_schema_url(base):
            via_proxy = make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
            yield url, via_proxy, taken_away
    finally:
        proxy.stop()


def _count(store: SqlStore, sql: str) -> int:
    with store.unit_of_work(readonly=True) as uow:
        return int(uow.connection.execute(text(sql)).scalar_one())


def _wait(cond: Callable[[], bool], what: str, timeout: float, *procs: Process) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        for p in procs:
            assert p.proc.poll() is None, f"{p.proc.args} exited:\n{p.output()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "\n".join(
            p.output()[-3000:] for p in procs
        )
        time.sleep(0.1)


def _status(client: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response | None:
    try:
        return client.request(method, url, **kw)
    except httpx.TransportError:
        return None


def test_database_outage_under_serve_and_worker(
    database: tuple[str, str, Callable[[], AbstractContextManager[None]]], tmp_path: Path
) -> None:
    url, process_url, outage = database
    store = SqlStore(url)
    store.upgrade()
    policy = tmp_path / "outage-ladder.yaml"
    policy.write_text(POLICY, "utf-8")
    env = {
        "ESCALADE_DATABASE_URL": process_url,
        "ESCALADE_SQLITE_BUSY_TIMEOUT_MS": str(BUSY_TIMEOUT_MS),
    }
    key = cli_key(env, "outage-client")  # an operator's key, made before serve starts
    port = _free_port()
    # SQLite has one writer: its engine runs in one process (the worker), as documented;
    # on PostgreSQL serve runs one in-process too, and both share the work
    engine = ["--no-engine"] if url.startswith("sqlite") else []
    serve = Process(["serve", "--policy", str(policy), "--port", str(port), *engine], env)
    worker = Process(
        ["worker", "--url", process_url, "--poll", "0.05", "--lease", "2s", "--name", "w1"], env
    )
    procs = (serve, worker)
    base = f"http://127.0.0.1:{port}"
    accepted: list[str] = []
    answers: list[tuple[str, int]] = []  # (phase, status)
    try:
        with httpx.Client(base_url=base, timeout=30, headers=bearer(key)) as client:

            def ready() -> bool:
                r = _status(client, "GET", "/readyz")
                return r is not None and r.status_code == 200

            _wait(ready, "serve to be ready", 60, *procs)

            def create(ref: str, phase: str, *, retry: bool) -> httpx.Response:
                for _ in range(20):
                    r = client.post(
                        "/v1/escalations", json={"ref": ref, "subject": f"outage {ref}"}
                    )
                    answers.append((phase, r.status_code))
                    if r.status_code == 201:
                        accepted.append(ref)
                    if not (retry and r.status_code == 503):
                        return r
                    time.sleep(float(r.headers["retry-after"]))  # what a good client does
                return r

            for i in range(6):
                assert create(f"B{i}", "before", retry=True).status_code == 201

            with outage():
                started = time.monotonic()
                i = 0
                while time.monotonic() - started < OUTAGE_SECONDS:
                    r = create(f"D{i}", "during", retry=False)
                    assert r.status_code == 503, r.text
                    assert int(r.headers["retry-after"]) >= 1
                    [item] = r.json()["detail"]
                    assert item["loc"] == ["database"]
                    assert item["type"] in ("database_busy", "database_unavailable")
                    not_ready = client.get("/readyz")
                    assert not_ready.status_code == 503 and "retry-after" in not_ready.headers
                    assert not_ready.json()["detail"][0]["field"] == "database"
                    assert client.get("/healthz").status_code == 200
                    i += 1

            _wait(ready, "serve to be ready again", 60, *procs)
            for i in range(6):
                assert create(f"A{i}", "after", retry=True).status_code == 201

        with store.engine.connect() as conn:  # closed, or the schema's teardown waits on it
            stored = {ref for (ref,) in conn.execute(text("SELECT ref FROM escalations"))}
        assert set(accepted) <= stored, "an accepted escalation was lost"
        expected = len(stored) * NOTICES_PER_ESCALATION

        def sent() -> int:
            return _count(store, "SELECT count(*) FROM timeline WHERE kind = 'notification.sent'")

        _wait(lambda: sent() >= expected, f"{expected} notifications", 180, *procs)
        time.sleep(0.5)  # nothing more may arrive
    finally:
        for p in procs:
            p.stop()
        logs = [p.output() for p in procs]
    assert sent() == expected
    doubles = _count(
        store,
        "SELECT count(*) FROM (SELECT escalation_id, data FROM timeline "
        "WHERE kind = 'notification.sent' GROUP BY escalation_id, data "
        "HAVING count(*) > 1) AS dup",
    )
    assert doubles == 0
    assert _count(store, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0
    assert all(status in (201, 503) for _, status in answers), answers
    assert any(phase == "during" for phase, _ in answers)
    for log in logs:
        assert "Traceback" not in log, log
        # one line when the outage starts and one when it ends, not one per pass
        assert log.count("backing off") <= 3, log
    assert "backing off" in logs[1] and "working again" in logs[1], logs[1]
    store.dispose()
