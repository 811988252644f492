"""A timer the escalation service cannot handle fails loudly: the engine retries it with
backoff and then marks it failed; it is never marked done and silently dropped."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from tests.engine.escalation_harness import Harness, policy

from escalade.engine import EngineConfig
from escalade.escalation.kinds import TimerKind
from escalade.store import Store
from escalade.store.rows import TimerState

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

POLICY = """
escalade: 1
id: kinds
teams: [{id: support, contacts: {email: support@example.com}}]
priorities: [{id: P1, response: 1h}]
"""


def test_a_timer_of_a_kind_nobody_handles_is_retried_then_failed(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness.start(
        store, T0, config=EngineConfig(max_attempts=2, retry_base=timedelta(seconds=1))
    )
    h.apply(policy(POLICY))
    esc = h.create("E1", subject="Printer on fire", priority="P1")
    with store.unit_of_work() as uow:
        # an escalation timer without its escalation, and a hand-off bound to one
        uow.timers.schedule(TimerKind.sla_warning.value, T0, "orphan", {"clock": "response"})
        uow.timers.schedule(
            TimerKind.oncall_handoff.value, T0, "misbound", {}, escalation_id=esc.id
        )
        uow.commit()
    with caplog.at_level(logging.ERROR, logger="escalade.engine.timers"):
        h.advance(timedelta(minutes=1))
    with store.unit_of_work() as uow:
        for key in ("orphan", "misbound"):
            timer = uow.timers.get(key)
            assert timer is not None
            assert timer.state is TimerState.failed, key
            assert timer.attempts == 2
            assert "no handler for kind" in (timer.last_error or "")
    assert "giving up" in caplog.text
