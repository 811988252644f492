"""Both stores implement the whole store interface with its signatures, and ``simulate`` on
the memory store prints exactly what it prints on SQLite."""

from __future__ import annotations

import inspect
import random
import subprocess
import sys
from abc import ABC

import pytest

from escalade.loading import router_for
from escalade.policy import load_policy
from escalade.simulate.runner import run_scenario
from escalade.simulate.scenario import parse_scenario
from escalade.store import db, interface, memory, repositories

TRIPLES = [
    (interface.PolicyRepository, repositories.SqlPolicyRepository, memory.MemoryPolicyRepository),
    (
        interface.EscalationRepository,
        repositories.SqlEscalationRepository,
        memory.MemoryEscalationRepository,
    ),
    (
        interface.TimelineRepository,
        repositories.SqlTimelineRepository,
        memory.MemoryTimelineRepository,
    ),
    (interface.TimerRepository, repositories.SqlTimerRepository, memory.MemoryTimerRepository),
    (interface.OutboxRepository, repositories.SqlOutboxRepository, memory.MemoryOutboxRepository),
    (
        interface.ActivityRepository,
        repositories.SqlActivityRepository,
        memory.MemoryActivityRepository,
    ),
    (
        interface.AlertKeyRepository,
        repositories.SqlAlertKeyRepository,
        memory.MemoryAlertKeyRepository,
    ),
    (interface.ActionLedger, repositories.SqlActionLedger, memory.MemoryActionLedger),
    (interface.UnitOfWork, db.SqlUnitOfWork, memory.MemoryUnitOfWork),
    (interface.Store, db.SqlStore, memory.MemoryStore),
]


@pytest.mark.parametrize("abstract, sql, mem", TRIPLES, ids=lambda c: c.__name__)
def test_both_stores_implement_the_interface_with_its_signatures(
    abstract: type[ABC], sql: type, mem: type
) -> None:
    methods = sorted(abstract.__abstractmethods__)
    assert methods, f"{abstract.__name__} declares nothing"
    for impl in (sql, mem):
        assert issubclass(impl, abstract)
        assert not getattr(impl, "__abstractmethods__", None), f"{impl.__name__} leaves some out"
        for name in methods:
            if isinstance(getattr(abstract, name), property):
                assert isinstance(getattr(impl, name), property), f"{impl.__name__}.{name}"
                continue
            want = inspect.signature(getattr(abstract, name))
            got = inspect.signature(getattr(impl, name))
            assert list(got.parameters) == list(want.parameters), f"{impl.__name__}.{name}"


def test_the_memory_store_does_not_load_sqlalchemy() -> None:
    code = (
        "import sys, escalade.store.memory, escalade.simulate.runner; "
        "print('sqlalchemy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_savepoint_undoes_only_its_block() -> None:
    from datetime import UTC, datetime

    t0 = datetime(2026, 3, 9, tzinfo=UTC)
    store = memory.MemoryStore()
    with store.unit_of_work() as uow:
        uow.timers.schedule("t", t0, "kept")
        with pytest.raises(RuntimeError), uow.savepoint():
            uow.timers.schedule("t", t0, "undone")
            assert uow.timers.claim(kinds=["t"], now=t0, limit=5, worker="w", lease_until=t0)
            raise RuntimeError("handler failed")
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.timers.get("undone") is None
        kept = uow.timers.get("kept")
        assert kept is not None and kept.lease_until is None  # the claim was undone too
        assert uow.timers.next_due(["t"]) == t0
        assert [
            t.key
            for t in uow.timers.claim(kinds=["t"], now=t0, limit=5, worker="w", lease_until=t0)
        ] == ["kept"]


def test_simulate_prints_the_same_on_both_stores() -> None:
    """A generated day on the SEV policy (the benchmark's scenario, smaller)."""
    from benchmarks.bench_simulate import POLICY, scenario_text

    policy = load_policy(POLICY)
    router = router_for(policy, POLICY)
    scenario = parse_scenario(scenario_text(120, seed=random.Random(3).randrange(100)), "b.yaml")
    on_memory = run_scenario(scenario, router, store="memory")
    on_sqlite = run_scenario(scenario, router, store="sqlite")
    assert len(on_memory) > 1000
    assert on_memory == on_sqlite
