"""Exactly once across a restart, on real SQLite and PostgreSQL: 200 escalations with ladder
timers; the engine runs partway, crashes with timers and messages claimed but not done, and
a new service and engine (another process, as after a restart) finish the work. Every ladder
step is notified exactly once, and what fired late says so on its timeline."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from escalation_harness import Harness, policy

from escalade.engine import EngineConfig
from escalade.routing.models import EscalationInput
from escalade.service.wiring import TIMER_KINDS
from escalade.store import Store
from escalade.store.db import SqlStore

T0 = datetime(2026, 3, 9, 2, 0, tzinfo=UTC)
N = 200
TOLERANCE = timedelta(seconds=5)  # EngineConfig.late_tolerance

RESTART = """
id: restart
people: [{id: lena}, {id: omar}, {id: grace}]
teams: [{id: engineering, members: [lena, omar], contacts: {email: eng@example.com}}]
priorities: [{id: SEV-1, ladder: page}]
ladders:
  - id: page
    steps:
      - {after: 10m, notify: [{person: lena}], unless: [resolved]}
      - {after: 20m, notify: [{person: omar}], unless: [resolved]}
      - {after: 30m, notify: [{person: grace}], unless: [resolved]}
categories: [{id: outage, owner: engineering}]
routing: {default_category: outage, default_priority: SEV-1}
"""


def test_every_ladder_step_is_notified_exactly_once_across_a_restart(sql_store: Store) -> None:
    store = sql_store  # worker processes reach it by URL
    first = Harness.start(store, T0, config=EngineConfig(batch_size=20))
    version = first.apply(policy(RESTART))
    for i in range(N):
        first.clock.set(T0 + timedelta(seconds=i // 20))  # ten due times, 1 s apart
        first.service.create(EscalationInput(subject=f"Checkout failing ({i})"), ref=f"E{i}")
    first.advance_to(T0 + timedelta(minutes=15))  # step 1 everywhere

    # The crash, at 20m30s, when every step-2 timer is due: the worker fired one batch (20)
    # but delivered none of its messages; it had also claimed 30 more timers and half of
    # those messages when it died. Its claims come back when their lease runs out.
    crash = T0 + timedelta(minutes=20, seconds=30)
    first.clock.set(crash)
    assert first.engine.steps[0].run(crash, store) == 20
    lease_until = crash + timedelta(seconds=30)
    with store.unit_of_work() as uow:
        held = uow.timers.claim(
            kinds=TIMER_KINDS, now=crash, limit=30, worker="dead", lease_until=lease_until
        )
        messages = uow.outbox.claim(now=crash, limit=10, worker="dead", lease_until=lease_until)
        uow.commit()
    assert (len(held), len(messages)) == (30, 10)
    del first  # the process is gone; nothing in memory survives

    # A new process: its own connection pool, service, engine and clock.
    assert isinstance(store, SqlStore)
    second_store = SqlStore(store.url)
    try:
        second = Harness.start(second_store, crash)
        assert second.apply(policy(RESTART)) == version
        second.advance_to(T0 + timedelta(hours=2))

        with second_store.unit_of_work() as uow:
            escalations = {e.id: e.ref for e in uow.escalations.find(limit=N + 1)}
            entries = uow.timeline.after(0, limit=100_000)
            sent = [e for e in entries if e.kind == "notification.sent"]
            timers = {t.key: t for t in uow.timers.find(states=None, limit=10_000)}
            pending = uow.outbox.find(states=["pending"])
        assert len(escalations) == N and not pending
        assert all(t.state == "done" for t in timers.values())

        per_step = Counter(
            (escalations[e.escalation_id], e.data["step"]) for e in sent if "ladder" in e.data
        )
        assert per_step == {(f"E{i}", step): 1 for i in range(N) for step in (1, 2, 3)}
        assert Counter(escalations[e.escalation_id] for e in sent if "ladder" not in e.data) == {
            f"E{i}": 1 for i in range(N)
        }  # the creation notice, once

        # late: fired more than the tolerance after due, marked on the timer and the timeline
        late_keys = {k for k, t in timers.items() if t.late}
        for key, t in timers.items():
            assert t.fired_at is not None
            assert t.late == (t.fired_at - t.due_at > TOLERANCE), key
        assert late_keys, "the restart left timers late"
        assert len(late_keys) < len(timers), "timers on time are not late"
        assert {k for k in late_keys if ":ladder:0:0:1" in k}, "step-2 timers ran late"
        for e in sent:
            if "ladder" not in e.data:
                continue
            key = f"esc:{e.escalation_id}:ladder:0:0:{e.data['step'] - 1}"
            assert e.data.get("late", False) == (key in late_keys), (key, e.data)
    finally:
        second_store.dispose()
