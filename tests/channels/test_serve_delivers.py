"""``escalade serve`` end to end: the policy's webhook channel delivers a page to a
local receiver, the page's own acknowledge link works from a plain HTTP client, the
delivery log is readable over HTTP; a missing secret stops ``--strict-channels``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.channels.receivers import HttpReceiver, free_port
from tests.keys import bearer, cli_key

POLICY = """
id: serve-delivers
people: [{id: ana}]
teams: [{id: ops}]
priorities: [{id: P1, ladder: page, notify: queue}]
ladders:
  - id: page
    steps: [{after: 0s, notify: [{person: ana}], channel: webhook, unless: [acknowledged]}]
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
channels:
  - {id: hook, type: webhook, carries: [webhook], url: "%s/hook",
     signing_secret: {env: SERVE_HOOK_SECRET}}
"""


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "escalade.cli.main", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def setup(tmp_path: Path, receiver: HttpReceiver) -> Iterator[tuple[Path, dict[str, str]]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % receiver.url)
    env = {
        **os.environ,
        "ESCALADE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SERVE_HOOK_SECRET": "hook-secret",
    }
    env.pop("ESCALADE_POLICY", None)
    assert _cli("db", "upgrade", env=env).returncode == 0
    yield policy, env


def test_serve_pages_through_the_policy_channel_and_the_page_link_acknowledges(
    setup: tuple[Path, dict[str, str]], receiver: HttpReceiver
) -> None:
    policy, env = setup
    port = free_port()
    env["ESCALADE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "escalade.cli.main", "serve", "--policy", str(policy),
           "--port", str(port), "--strict-channels"]  # fmt: skip
    key = cli_key(env, "serve-delivers")  # the API needs a key; the action link does not
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=bearer(key))
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        created = client.post("/v1/escalations", json={"subject": "Checkout down", "ref": "S-1"})
        assert created.status_code == 201
        deadline = time.monotonic() + 30
        while not receiver.requests:
            assert time.monotonic() < deadline, "the page never arrived"
            time.sleep(0.05)
        page = receiver.requests[0].json()
        assert page["ref"] == "S-1" and page["recipient"] == "ana"
        link = page["links"]["acknowledge"]
        assert link.startswith(f"http://127.0.0.1:{port}/v1/act/")
        assert httpx.get(link).status_code == 200  # the confirm page
        done = httpx.post(link)
        assert done.status_code == 200 and "S-1 was acknowledged by ana" in done.text
        esc = client.get("/v1/escalations/S-1").json()
        assert (esc["state"], esc["owner"]) == ("acknowledged", "ana")
        log = client.get("/v1/escalations/S-1/deliveries").json()["deliveries"]
        assert [(d["event"], d["instance"]) for d in log if d["to"] == "ana"] == [
            ("queued", None),
            ("sent", "hook"),
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_missing_secret_stops_a_strict_serve(
    setup: tuple[Path, dict[str, str]],
) -> None:
    policy, env = setup
    env.pop("SERVE_HOOK_SECRET")
    strict = _cli("serve", "--policy", str(policy), "--port", "9", "--strict-channels", env=env)
    assert strict.returncode == 1
    assert strict.stderr.strip().endswith(
        "channels: channel 'hook' (webhook): environment variable SERVE_HOOK_SECRET is not set"
    )


def test_a_bad_link_setting_is_a_clear_error(setup: tuple[Path, dict[str, str]]) -> None:
    policy, env = setup
    env["ESCALADE_ACTION_LINK_TTL"] = "soon"
    bad = _cli("serve", "--policy", str(policy), "--port", "9", env=env)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error: action links: ESCALADE_ACTION_LINK_TTL: 'soon'")
    env["ESCALADE_ACTION_LINK_TTL"] = "12h"
    env["ESCALADE_SECRET_KEY"] = "short"
    short = _cli("serve", "--policy", str(policy), "--port", "9", env=env)
    assert short.returncode == 1
    assert short.stderr.strip() == (
        "error: action links: the action-link secret key must be at least 16 bytes"
    )
