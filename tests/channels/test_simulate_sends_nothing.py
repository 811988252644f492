"""``escalade simulate`` never sends: with a policy whose channels point at a live
receiver, the scenario's pages appear in its output and nothing reaches the receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.channels.receivers import HttpReceiver

POLICY = """
id: sim-quiet
people: [{id: ana}]
teams: [{id: ops, contacts: {chat: "#ops"}}]
priorities: [{id: P1, ladder: page, notify: post}]
ladders:
  - id: page
    steps: [{after: 0s, notify: [{person: ana}], channel: webhook, unless: []}]
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
channels:
  - {id: hook, type: webhook, carries: [webhook], url: "%(url)s/hook",
     signing_secret: {env: SIM_SECRET}}
  - {id: slack, type: slack, carries: [chat], webhook: {env: SIM_SLACK}}
"""
SCENARIO = """
policy: policy.yaml
start: 2026-12-03T09:00:00Z
until: 1h
events:
  - at: 0m
    create: {ref: Q-1, subject: Checkout down}
"""


def test_simulate_captures_every_message_and_sends_none(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY % {"url": receiver.url})
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    env = {**os.environ, "SIM_SECRET": "s", "SIM_SLACK": f"{receiver.url}/slack"}
    out = subprocess.run(
        [sys.executable, "-m", "escalade.cli.main", "simulate", str(tmp_path / "scenario.yaml")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    sent = [
        (e["channel"], e["to"])
        for e in map(json.loads, out.stdout.splitlines())
        if e["type"] == "notification.sent"
    ]
    assert sorted(sent) == [("chat", "#ops"), ("webhook", "ana")]
    assert receiver.attempts == 0
