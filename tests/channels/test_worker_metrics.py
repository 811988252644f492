"""``escalade worker --metrics-port`` serves the delivery counters of the process that
delivers: a page sent first time is counted as ``first_try`` for its channel instance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.channels.receivers import HttpReceiver, free_port

from escalade.clock import SystemClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.store.db import SqlStore

POLICY = """
id: worker-metrics
people: [{id: ana}]
teams: [{id: ops}]
priorities: [{id: P1, ladder: page, notify: queue}]
ladders:
  - id: page
    steps: [{after: 0s, notify: [{person: ana}], channel: webhook, unless: []}]
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
channels:
  - {id: hook, type: webhook, carries: [webhook], url: "%s/hook",
     signing_secret: {env: METRICS_HOOK_SECRET}}
"""


def test_worker_metrics_count_first_try_deliveries(tmp_path: Path, receiver: HttpReceiver) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store = SqlStore(url)
    store.upgrade()
    service = EscalationService(store, SystemClock())
    service.apply_policy(policy_from_text(POLICY % receiver.url, "m.yaml"))
    service.create(EscalationInput(subject="Checkout down"), ref="M-1")
    store.dispose()
    port = free_port()
    env = {**os.environ, "METRICS_HOOK_SECRET": "s"}
    cmd = [sys.executable, "-m", "escalade.cli.main", "worker", "--url", url,
           "--poll", "0.05", "--metrics-port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    series = 'escalade_notifications_total{channel="webhook",instance="hook",outcome="first_try"}'
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no first_try delivery counted"
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.TransportError:
                text = ""
            if f"{series} 1.0" in text:
                break
            time.sleep(0.1)
        assert len(receiver.requests) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
