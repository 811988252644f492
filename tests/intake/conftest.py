"""A real ``escalade serve`` (its own process, SQLite, the engine in process) for intake
tests against real senders, with an intake key and a reading key made by the CLI."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.channels.receivers import HttpReceiver, free_port, self_signed_cert
from tests.keys import bearer, cli_key

POLICY = """
id: intake-live
people: [{id: ana}]
teams: [{id: ops}]
priorities:
  - {id: P1, ladder: page, response: 1h}
  - {id: P2, ladder: page, response: 4h}
ladders:
  - id: page
    steps: [{after: 0s, notify: [{person: ana}], channel: webhook, unless: [acknowledged]}]
categories: [{id: outage, owner: ops}]
routing: {default_category: outage, default_priority: P2}
alerts:
  category: outage
  severity: {critical: P1, error: P1, warning: P2}
  escalation_per: %s
channels:
  - {id: hook, type: webhook, carries: [webhook], url: "%s/hook",
     signing_secret: {env: INTAKE_HOOK_SECRET}}
"""


@dataclass
class Served:
    url: str
    intake_key: str
    client: httpx.Client  # reads with an admin key
    verify: ssl.SSLContext | bool = True

    def escalations(self) -> list[dict]:
        answer = self.client.get("/v1/escalations")
        assert answer.status_code == 200, answer.text
        return sorted(answer.json(), key=lambda e: e["ref"])

    def wait_for(self, what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)


def serve(
    tmp_path: Path,
    receiver: HttpReceiver,
    per: str = "fingerprint",
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Served]:
    """``tls``: (certificate, key) to serve HTTPS (clients then trust the certificate)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % (per, receiver.url))
    env = {
        **os.environ,
        "ESCALADE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "INTAKE_HOOK_SECRET": "hook-secret",
    }
    env.pop("ESCALADE_POLICY", None)
    up = subprocess.run(
        [sys.executable, "-m", "escalade.cli.main", "db", "upgrade"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    intake = cli_key(env, "monitoring", scope="intake")
    admin = cli_key(env, "reader", scope="admin")
    port = free_port()
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    env["ESCALADE_PUBLIC_URL"] = url
    log = (tmp_path / "serve.log").open("wb")
    tls_args = ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])] if tls else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "escalade.cli.main", "serve", "--policy", str(policy),
         "--host", "127.0.0.1", "--port", str(port), "--strict-channels", *tls_args],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
    client = httpx.Client(base_url=url, timeout=10, headers=bearer(admin), verify=verify)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield Served(url, intake, client, verify)
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # a client kept a connection open
            proc.kill()
            proc.wait(timeout=20)
        log.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is missing: HTTPS intake tests NOT RUN")
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def served_tls(
    tmp_path: Path, receiver: HttpReceiver, tls_cert: tuple[Path, Path]
) -> Iterator[Served]:
    yield from serve(tmp_path, receiver, tls=tls_cert)


@pytest.fixture
def served(tmp_path: Path, receiver: HttpReceiver) -> Iterator[Served]:
    yield from serve(tmp_path, receiver)
