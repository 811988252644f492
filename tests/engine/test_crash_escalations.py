"""The real escalation engine under SIGKILL: 1,000 escalations with a three-step ladder,
``escalade worker`` (the default escalation handlers and outbox) killed at random points
and restarted; in the end every ladder step of every escalation is recorded as notified
exactly once, and every timer ran once (both databases)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from sqlalchemy import text

from escalade.clock import SystemClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.store import Store

POLICY = """
id: crash-ladder
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
ESCALATIONS = 1000
STEPS = 3


def _count(store: Store, sql: str) -> int:
    with store.unit_of_work() as uow:
        return int(uow.connection.execute(text(sql)).scalar_one())


def _sent_steps(store: Store) -> int:
    return _count(store, "SELECT count(*) FROM timeline WHERE kind = 'notification.sent'")


class Worker:
    def __init__(self, store: Store, name: str) -> None:
        url = store.url.render_as_string(hide_password=False)
        cmd = [sys.executable, "-m", "escalade.cli.main", "worker", "--url", url,
               "--batch", "50", "--lease", "1s", "--poll", "0.05", "--name", name]  # fmt: skip
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.log)

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def test_sigkilled_escalation_workers_notify_every_ladder_step_exactly_once(
    sql_store: Store,
) -> None:
    store = sql_store  # worker processes reach it by URL
    service = EscalationService(store, SystemClock())
    service.apply_policy(policy_from_text(POLICY, "crash-ladder.yaml"))
    for i in range(ESCALATIONS):
        service.create(EscalationInput(subject=f"outage {i}"), ref=f"E{i}")
    store.dispose()
    expected = ESCALATIONS * (STEPS + 1)  # the creation notice and three ladder steps each

    rng = random.Random(5)
    for round_ in range(3):
        worker = Worker(store, f"w{round_}")
        before = _sent_steps(store)
        deadline = time.monotonic() + 60
        while _sent_steps(store) == before:
            assert worker.proc.poll() is None, worker.stderr()
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        worker.proc.send_signal(signal.SIGKILL)
        assert worker.proc.wait(10) == -signal.SIGKILL
        assert "Traceback" not in worker.stderr()
    assert _sent_steps(store) < expected, "finished before the last kill: add more work"

    time.sleep(1.1)  # the dead workers' leases run out
    final = subprocess.run(
        [
            sys.executable,
            "-m",
            "escalade.cli.main",
            "worker",
            "--once",
            "--url",
            store.url.render_as_string(hide_password=False),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert final.returncode == 0, final.stderr

    assert _count(store, "SELECT count(*) FROM timers WHERE state <> 'done'") == 0
    assert _count(store, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0
    assert _sent_steps(store) == expected
    doubles = _count(
        store,
        "SELECT count(*) FROM (SELECT escalation_id, data FROM timeline "
        "WHERE kind = 'notification.sent' GROUP BY escalation_id, data "
        "HAVING count(*) > 1) AS dup",
    )
    assert doubles == 0
    ladder_timers = _count(store, "SELECT count(*) FROM timers WHERE kind = 'ladder.step'")
    assert ladder_timers == ESCALATIONS * STEPS
    assert _count(store, "SELECT count(*) FROM actions_done") == _count(
        store, "SELECT count(*) FROM timers"
    )
