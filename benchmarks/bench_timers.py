"""Timer engine benchmark: lag and throughput on SQLite and PostgreSQL.

For each setup (SQLite with 1 worker, PostgreSQL with 1 and with 2 worker processes) it
opens N escalations, then runs two phases with real ``Engine.run_forever`` workers:

- drain: N timers, all already due. Measures actions per second (first to last action).
- stream: N timers due at an even rate over a window. Measures timer lag, the real time
  an action ran minus its due time (p50, p99, max).

Each action is what a ladder step does at the least: it appends a timeline entry (whose
time is the real time of the action) inside the engine's transaction, with the
exactly-once ledger. Prints one JSON object.

    .venv/bin/python benchmarks/bench_timers.py                      # 100,000 timers
    .venv/bin/python benchmarks/bench_timers.py --n 20000 --setups sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from escalade.clock import SystemClock
from escalade.engine import Engine, EngineConfig
from escalade.store import NewTimer, Store, TimerRow, UnitOfWork
from escalade.store import tables as t
from escalade.store.db import SqlStore

CLOCK = SystemClock()
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def handlers() -> dict[str, Any]:
    def fire(uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        assert timer.escalation_id is not None
        uow.timeline.append(
            timer.escalation_id,
            at=CLOCK.now(),  # the real time of the action, to measure lag
            actor="engine",
            kind=timer.kind,
            data={"late": timer.late},
        )

    return {"bench.drain": fire, "bench.stream": fire}


# --------------------------------------------------------------------------- worker process


def run_worker(url: str, batch: int, poll: float) -> None:
    store = SqlStore(url)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    engine = Engine(store, CLOCK, handlers(), config=EngineConfig(batch_size=batch))
    engine.run_forever(stop, poll_interval=poll)
    store.dispose()


# --------------------------------------------------------------------------- databases


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextmanager
def postgres_url(base: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def open_escalations(store: Store, n: int) -> list[int]:
    now = CLOCK.now()
    with store.unit_of_work() as uow:
        policy = uow.policies.add(name="bench", content="id: bench\n", applied_by="b", at=now)
        rows = [
            {
                "ref": f"B{i}",
                "policy_version_id": policy.id,
                "subject": f"benchmark escalation {i}",
                "state": "open",
                "priority": "P1",
                "snapshot": {"ladder": ["15m", "30m", "1h"]},
                "customer": {},
                "package": {},
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for i in range(n)
        ]
        uow.connection.execute(t.escalations.insert(), rows)
        ids = list(uow.connection.execute(select(t.escalations.c.id)).scalars())
        uow.commit()
    return ids


def schedule(store: Store, kind: str, ids: list[int], first_due: datetime, window: float) -> None:
    step = window / max(len(ids) - 1, 1)
    timers = [
        NewTimer(kind, first_due + timedelta(seconds=i * step), f"{kind}/{eid}", {}, eid)
        for i, eid in enumerate(ids)
    ]
    with store.unit_of_work() as uow:
        uow.timers.schedule_many(timers, created_at=CLOCK.now())
        uow.commit()


def wait_done(store: Store, kind: str, n: int, timeout: float) -> None:
    q = text("SELECT count(*) FROM timers WHERE kind = :k AND state = 'done'")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.unit_of_work(readonly=True) as uow:
            if uow.connection.execute(q, {"k": kind}).scalar_one() >= n:
                return
        time.sleep(0.25)
    raise SystemExit(f"{kind}: not done after {timeout:.0f}s")


def fired(store: Store, kind: str) -> list[tuple[datetime, datetime]]:
    """(due, action time) of each action of this kind."""
    q = (
        select(t.timers.c.due_at, t.timeline.c.at)
        .join(t.timeline, t.timeline.c.escalation_id == t.timers.c.escalation_id)
        .where(t.timers.c.kind == kind, t.timeline.c.kind == kind)
    )
    with store.unit_of_work(readonly=True) as uow:
        return [(due, at) for due, at in uow.connection.execute(q)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- one setup


def bench_setup(url: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    store = SqlStore(url)
    store.upgrade()
    ids = open_escalations(store, args.n)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "_worker", url, str(args.batch), str(args.poll)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for _ in range(workers)
    ]
    try:
        time.sleep(2.0)  # let the workers import and connect

        # drain: everything already due
        schedule(store, "bench.drain", ids, CLOCK.now() - timedelta(seconds=1), 0.0)
        wait_done(store, "bench.drain", args.n, timeout=600)
        times = sorted(at for _, at in fired(store, "bench.drain"))
        assert len(times) == args.n, f"drain: {len(times)} actions for {args.n} timers"
        span = (times[-1] - times[0]).total_seconds()
        drain = {"actions": len(times), "seconds": round(span, 2), "actions_per_s": None}
        drain["actions_per_s"] = round(len(times) / span) if span else None

        # stream: due at an even rate from 3 s from now, over the window
        lead = 3.0
        schedule(store, "bench.stream", ids, CLOCK.now() + timedelta(seconds=lead), args.window)
        wait_done(store, "bench.stream", args.n, timeout=args.window + 600)
        lags = [(at - due).total_seconds() for due, at in fired(store, "bench.stream")]
        assert len(lags) == args.n, f"stream: {len(lags)} actions for {args.n} timers"
        stream = {
            "actions": len(lags),
            "offered_per_s": round(args.n / args.window),
            "lag_p50_s": round(percentile(lags, 50), 3),
            "lag_p99_s": round(percentile(lags, 99), 3),
            "lag_max_s": round(max(lags), 3),
            "lag_mean_s": round(statistics.fmean(lags), 3),
        }
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        store.dispose()
    return {"workers": workers, "drain": drain, "stream": stream}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        run_worker(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="escalations (one timer each)")
    parser.add_argument("--window", type=float, default=40.0, help="stream window, seconds")
    parser.add_argument("--batch", type=int, default=EngineConfig().batch_size)
    parser.add_argument("--poll", type=float, default=1.0, help="worker idle poll, seconds")
    parser.add_argument("--pg-url", default=os.environ.get("ESCALADE_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument(
        "--setups", default="sqlite,postgresql-1,postgresql-2", help="comma-separated"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "timers",
        "n": args.n,
        "window_s": args.window,
        "batch": args.batch,
        "cpus": os.cpu_count(),
        "setups": {},
    }
    for setup in args.setups.split(","):
        if setup == "sqlite":
            with sqlite_url() as url:
                results["setups"][setup] = bench_setup(url, 1, args)
        else:
            workers = int(setup.rsplit("-", 1)[1])
            with postgres_url(args.pg_url) as url:
                results["setups"][setup] = bench_setup(url, workers, args)
        print(json.dumps({setup: results["setups"][setup]}), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
