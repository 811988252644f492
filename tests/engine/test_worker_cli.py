"""``escalade worker`` runs the escalation engine by default: due ladder steps of
escalations stored by another process fire and are recorded on their timelines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from escalade.clock import SystemClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.store.db import SqlStore

POLICY = """
id: worker-test
teams: [{id: ops, contacts: {chat: "#ops"}}]
people: [{id: ana}]
priorities:
  - {id: P1, ladder: page-now, notify: post}
ladders:
  - id: page-now
    steps: [{after: 0m, notify: [{person: ana}], channel: sms, unless: []}]
categories: [{id: outage, owner: ops, priority: P1}]
"""


def test_worker_once_fires_due_ladder_steps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store = SqlStore(url)
    store.upgrade()
    service = EscalationService(store, SystemClock())
    service.apply_policy(policy_from_text(POLICY, "worker-test.yaml"))
    esc = service.create(EscalationInput(subject="db down", category="outage"), ref="W1")
    store.dispose()

    done = subprocess.run(
        [sys.executable, "-m", "escalade.cli.main", "worker", "--url", url, "--once"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    with SqlStore(url).unit_of_work() as uow:
        kinds = [(e.kind, e.data.get("to")) for e in uow.timeline.for_escalation(esc.id)]
    assert ("notification.sent", "ana") in kinds  # the ladder step, fired by the worker
    assert ("notification.sent", "#ops") in kinds  # the creation notice, delivered by it
