"""Delivery under SIGKILL: a webhook receiver that fails for a while, ``escalade worker``
processes (the real channels, read from the applied policy) killed at random points and
restarted. In the end every page has arrived, and exactly once once the receiver drops
repeats by ``Idempotency-Key`` as documented (a kill between the provider's answer and
the commit sends that message again: that is what the key is for); the delivery log and
the timeline record each page as sent exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

from sqlalchemy import text
from tests.channels.receivers import HttpReceiver

from escalade.clock import SystemClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.store import Store

POLICY = """
id: crash-delivery
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
     signing_secret: {env: CRASH_HOOK_SECRET}}
"""
ESCALATIONS = 300


def _count(store: Store, sql: str) -> int:
    with store.unit_of_work() as uow:
        return int(uow.connection.execute(text(sql)).scalar_one())


def _worker(store: Store, name: str, *extra: str) -> subprocess.Popen[bytes]:
    url = store.url.render_as_string(hide_password=False)
    cmd = [sys.executable, "-m", "escalade.cli.main", "worker", "--url", url,
           "--batch", "20", "--lease", "1s", "--poll", "0.05", "--retry-base", "1s",
           "--name", name, *extra]  # fmt: skip
    env = {**os.environ, "CRASH_HOOK_SECRET": "crash-secret"}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - read after the process ends
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    log = proc.log  # type: ignore[attr-defined]
    log.seek(0)
    return str(log.read().decode(errors="replace"))


def test_a_failing_receiver_gets_every_page_later_exactly_once_across_sigkill(
    sql_store: Store, receiver: HttpReceiver
) -> None:
    store = sql_store
    service = EscalationService(store, SystemClock())
    service.apply_policy(policy_from_text(POLICY % receiver.url, "crash.yaml"))
    for i in range(ESCALATIONS):
        service.create(EscalationInput(subject=f"outage {i}"), ref=f"E{i}")
    store.dispose()
    sent = "SELECT count(*) FROM outbox WHERE channel = 'webhook' AND state = 'sent'"
    receiver.fail_first = ESCALATIONS // 2  # the first 150 requests fail

    rng = random.Random(18)
    kills = 0
    touched = "SELECT count(*) FROM outbox WHERE channel = 'webhook' AND attempts > 0"
    for round_ in range(4):
        worker = _worker(store, f"w{round_}")
        before = _count(store, touched)
        deadline = time.monotonic() + 60
        while _count(store, touched) == before:  # started and working
            assert worker.poll() is None, _stderr(worker)
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        assert worker.poll() is None, _stderr(worker)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
        assert "Traceback" not in _stderr(worker)
        kills += 1
    assert receiver.attempts > len(receiver.requests), "the receiver never failed"
    assert _count(store, sent) < ESCALATIONS, "finished before the last kill: add more work"

    final = _worker(store, "final")
    deadline = time.monotonic() + 120
    while _count(store, sent) < ESCALATIONS:
        assert final.poll() is None, _stderr(final)
        assert time.monotonic() < deadline, "pages still undelivered"
        time.sleep(0.1)
    final.send_signal(signal.SIGTERM)
    assert final.wait(20) == 0, _stderr(final)

    keys = Counter(r.headers["Idempotency-Key"] for r in receiver.requests)
    assert len(keys) == ESCALATIONS  # every page arrived
    repeats = sum(n - 1 for n in keys.values())
    # a repeat needs a kill between the answer and the commit: at most one batch per kill
    assert repeats <= kills * 20, keys.most_common(3)
    assert _count(store, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0
    delivered = (
        "SELECT count(*) FROM (SELECT message_id FROM deliveries WHERE event = 'sent' "
        "GROUP BY message_id HAVING count(*) = 1) AS once"
    )
    assert _count(store, delivered) == _count(store, "SELECT count(*) FROM outbox")
    assert _count(store, "SELECT count(*) FROM deliveries WHERE event = 'failed'") > 0
    on_timeline = "SELECT count(*) FROM timeline WHERE kind = 'notification.sent'"
    assert _count(store, on_timeline) == _count(store, "SELECT count(*) FROM outbox")
