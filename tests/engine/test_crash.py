"""Kill workers with SIGKILL at random points; every due action is still done exactly once.

A real ``escalade worker`` process fires timers whose action writes the timer's key to
``crash_results`` in the engine's transaction. We SIGKILL it several times while it works,
restart it, and at the end count: each key exactly once, on SQLite and PostgreSQL. On
PostgreSQL two workers also run side by side (and one is killed) without doing anything
twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from escalade.store import NewTimer, Store
from escalade.store import tables as t

HERE = Path(__file__).parent
T0 = datetime(2026, 3, 7, 23, 50, tzinfo=UTC)


def _seed(store: Store, escalations: int, timers_each: int) -> int:
    """Open escalations, each with due timers; returns how many timers."""
    with store.unit_of_work() as uow:
        uow.connection.execute(text(_create_results_sql()))
        policy = uow.policies.add(name="crash", content="id: crash\n", applied_by="t", at=T0)
        uow.connection.execute(
            t.escalations.insert(),
            [
                {
                    "ref": f"E{i}",
                    "policy_version_id": policy.id,
                    "subject": "",
                    "state": "open",
                    "snapshot": {},
                    "customer": {},
                    "package": {},
                    "created_at": T0,
                    "updated_at": T0,
                    "version": 1,
                }
                for i in range(escalations)
            ],
        )
        ids = list(uow.connection.execute(text("SELECT id FROM escalations")).scalars())
        uow.timers.schedule_many(
            [
                NewTimer("crash.action", T0 + timedelta(seconds=n), f"E{eid}/step/{n}", {}, eid)
                for eid in ids
                for n in range(timers_each)
            ]
        )
        uow.commit()
    return len(ids) * timers_each


def _create_results_sql() -> str:
    sys.path.insert(0, str(HERE))
    try:
        from crash_handlers import CREATE
    finally:
        sys.path.remove(str(HERE))
    return CREATE


class Worker:
    """An ``escalade worker`` process; its stderr goes to a temporary file."""

    def __init__(self, store: Store, name: str, work_seconds: float = 0.003) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "ESCALADE_DATABASE_URL": store.url.render_as_string(hide_password=False),
            "CRASH_WORK_SECONDS": str(work_seconds),
        }
        cmd = [sys.executable, "-m", "escalade.cli.main", "worker", "--handlers",
               "crash_handlers:handlers", "--batch", "50", "--lease", "1s", "--poll", "0.05",
               "--name", name]  # fmt: skip
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.log)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, sig: signal.Signals) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        code = self.proc.wait(10)
        self.log.close()
        return code


def _count(store: Store, sql: str) -> int:
    with store.unit_of_work(readonly=True) as uow:
        return int(uow.connection.execute(text(sql)).scalar_one())


def _wait_for_progress(store: Store, worker: Worker, since: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = _count(store, "SELECT count(*) FROM crash_results")
        if done > since:
            return done
        if not worker.alive():
            pytest.fail(f"worker exited with {worker.proc.returncode}: {worker.stderr()}")
        time.sleep(0.02)
    pytest.fail("the worker made no progress in 30 s")


def _finish(store: Store, workers: list[Worker]) -> None:
    deadline = time.monotonic() + 60
    try:
        while _count(store, "SELECT count(*) FROM timers WHERE state = 'pending'"):
            assert time.monotonic() < deadline, "timers still pending after 60 s"
            for w in workers:
                assert w.alive(), f"a worker died: {w.stderr()}"
            time.sleep(0.05)
    finally:
        codes = [w.stop(signal.SIGTERM) for w in workers]
    assert codes == [0] * len(workers), "a worker did not stop cleanly on SIGTERM"


def _assert_exactly_once(store: Store, total: int) -> None:
    assert _count(store, "SELECT count(*) FROM crash_results") == total
    assert _count(store, "SELECT count(DISTINCT key) FROM crash_results") == total
    assert _count(store, "SELECT count(*) FROM actions_done") == total
    assert _count(store, "SELECT count(*) FROM timers WHERE state = 'done'") == total
    twice = _count(
        store,
        "SELECT count(*) FROM (SELECT key FROM crash_results GROUP BY key "
        "HAVING count(*) > 1) AS dup",
    )
    assert twice == 0


def _crash_run(store: Store, escalations: int, kills: int, seed: int) -> None:
    total = _seed(store, escalations, timers_each=2)
    rng = random.Random(seed)
    done = 0
    for round_ in range(kills):
        worker = Worker(store, f"w{round_}")
        done = _wait_for_progress(store, worker, done)
        time.sleep(rng.uniform(0.0, 0.25))
        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
        done = _count(store, "SELECT count(*) FROM crash_results")
        assert done < total, "the worker finished before it could be killed; add more work"
    _finish(store, [Worker(store, "final", work_seconds=0)])
    _assert_exactly_once(store, total)


def test_sigkilled_workers_do_every_action_exactly_once(sql_store: Store) -> None:
    store = sql_store  # worker processes reach it by URL
    _crash_run(store, escalations=1000, kills=4, seed=3)


@pytest.mark.slow
def test_sigkilled_workers_many_times(sql_store: Store) -> None:
    store = sql_store  # worker processes reach it by URL
    _crash_run(store, escalations=5000, kills=12, seed=11)


@pytest.mark.postgres
def test_two_postgresql_workers_share_work_without_doubles(sql_store: Store) -> None:
    store = sql_store  # worker processes reach it by URL
    if store.dialect != "postgresql":
        pytest.skip("several workers share work on PostgreSQL only; SQLite runs one")
    total = _seed(store, 1000, timers_each=2)
    a, b = Worker(store, "a"), Worker(store, "b")
    done = _wait_for_progress(store, a, 0)
    _wait_for_progress(store, b, done)
    time.sleep(0.1)
    b.stop(signal.SIGKILL)  # one dies mid-work; its claims come back after the lease
    _finish(store, [a, Worker(store, "c")])
    _assert_exactly_once(store, total)
    with store.unit_of_work() as uow:
        workers = set(
            uow.connection.execute(text("SELECT DISTINCT worker FROM crash_results")).scalars()
        )
    assert {"a", "b"} <= workers, f"both workers should have done some work, got {workers}"
