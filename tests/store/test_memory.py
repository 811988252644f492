"""The memory store implements the whole store interface, and ``simulate`` on it prints
exactly what it prints on SQLite."""

from __future__ import annotations

import inspect
import random
from pathlib import Path

import pytest

from escalade.policy import load_policy
from escalade.routing.loading import router_for
from escalade.simulate.runner import run_scenario
from escalade.simulate.scenario import parse_scenario
from escalade.store import db, memory, repositories

PAIRS = [
    (repositories.PolicyRepository, memory.MemoryPolicyRepository),
    (repositories.EscalationRepository, memory.MemoryEscalationRepository),
    (repositories.TimelineRepository, memory.MemoryTimelineRepository),
    (repositories.TimerRepository, memory.MemoryTimerRepository),
    (repositories.OutboxRepository, memory.MemoryOutboxRepository),
    (repositories.ActivityRepository, memory.MemoryActivityRepository),
    (repositories.AlertKeyRepository, memory.MemoryAlertKeyRepository),
    (repositories.ActionLedger, memory.MemoryActionLedger),
    (db.UnitOfWork, memory.MemoryUnitOfWork),
    (db.Store, memory.MemoryStore),
]
ROOT = Path(__file__).resolve().parents[2]


def _public(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    }


@pytest.mark.parametrize("sql, mem", PAIRS, ids=lambda c: c.__name__)
def test_every_public_method_is_implemented_with_the_same_signature(sql: type, mem: type) -> None:
    for name, member in _public(sql).items():
        if isinstance(member, classmethod | staticmethod):
            continue  # constructors from settings/URLs: SQL only
        assert name in vars(mem), f"{mem.__name__} leaves {name}() to the SQL implementation"
        if callable(member):
            want = inspect.signature(member)
            got = inspect.signature(vars(mem)[name])
            assert list(got.parameters) == list(want.parameters), f"{mem.__name__}.{name}"


def test_every_repository_of_a_unit_of_work_is_a_memory_one() -> None:
    store = memory.MemoryStore()
    with store.unit_of_work() as uow:
        for name, repo in vars(uow).items():
            if isinstance(repo, repositories._Repository):
                assert type(repo).__module__ == memory.__name__, name


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
    on_memory = run_scenario(scenario, policy, router, store="memory")
    on_sqlite = run_scenario(scenario, policy, router, store="sqlite")
    assert len(on_memory) > 1000
    assert on_memory == on_sqlite
