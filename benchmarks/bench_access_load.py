"""A mixed load of authenticated reads and writes on PostgreSQL, with the worker killed
(SIGKILL) and restarted in the middle: afterwards no accepted escalation and no audit
entry may be missing, and the audit chain must verify.

    .venv/bin/python -m benchmarks.bench_access_load [--seconds 60] [--clients 8]

It starts, in their own processes, ``escalade serve --no-engine`` and ``escalade worker``
on a fresh PostgreSQL schema ($ESCALADE_TEST_PG_URL or postgres@127.0.0.1/test), and
drives the API from this process with several threads: raise escalations, acknowledge
them, read them, list them, post alerts. Prints one JSON object: requests per second by
kind, latency percentiles, and the checks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "examples" / "policies" / "platform-operations.yaml"
ESCALADE = [sys.executable, "-m", "escalade.cli.main"]
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _schema(base: str) -> tuple[str, str]:
    name = f"load_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
    return name, url.render_as_string(hide_password=False)


def _drop(base: str, name: str) -> None:
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


class Load:
    def __init__(self, base: str, key: str, intake: str) -> None:
        self.base = base
        self.auth = {"Authorization": f"Bearer {key}"}
        self.intake = {"Authorization": f"Bearer {intake}"}
        self.accepted: list[str] = []
        self.acked: list[str] = []
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.lock = threading.Lock()

    def one(self, client: httpx.Client, rng: random.Random) -> None:
        roll = rng.random()
        with self.lock:
            known = list(self.accepted[-200:])
        if roll < 0.35 or not known:
            kind = "create"
            body = {"subject": f"Checkout slow for customer {rng.randrange(10**6)}"}
            started = time.perf_counter()
            r = client.post(f"{self.base}/v1/escalations", json=body, headers=self.auth)
            if r.status_code == 201:
                with self.lock:
                    self.accepted.append(r.json()["ref"])
        elif roll < 0.5:
            kind = "acknowledge"
            ref = rng.choice(known)
            started = time.perf_counter()
            r = client.post(
                f"{self.base}/v1/escalations/{ref}/actions",
                json={"action": "acknowledge", "by": "load"},
                headers=self.auth,
            )
            if r.status_code == 200:
                with self.lock:
                    self.acked.append(ref)
        elif roll < 0.75:
            kind = "read"
            started = time.perf_counter()
            r = client.get(f"{self.base}/v1/escalations/{rng.choice(known)}", headers=self.auth)
        elif roll < 0.9:
            kind = "list"
            started = time.perf_counter()
            r = client.get(f"{self.base}/v1/escalations?limit=50", headers=self.auth)
        else:
            kind = "alert"
            body = {"key": f"disk/{rng.randrange(50)}", "severity": "critical", "summary": "x"}
            started = time.perf_counter()
            r = client.post(f"{self.base}/v1/alerts", json=body, headers=self.intake)
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latency[kind].append(elapsed)
            self.status[kind][r.status_code] += 1


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("escalade serve exited")
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("escalade serve did not start")


def run(seconds: float, clients: int, pg: str) -> dict[str, Any]:
    name, url = _schema(pg)
    env = {
        **os.environ,
        "ESCALADE_DATABASE_URL": url,
        "ESCALADE_POLICY": str(POLICY),
        "ESCALADE_RATE_INTAKE_KEY": "100000/min",
        "ESCALADE_RATE_INTAKE_ADDRESS": "100000/min",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([*ESCALADE, "db", "upgrade"], env=env, check=True, capture_output=True)

        def key(*args: str) -> str:
            out = subprocess.run(
                [*ESCALADE, "keys", "create", *args], env=env, check=True, capture_output=True
            )
            return out.stdout.decode().strip()

        rw = key("--name", "load", "--scope", "read,write")
        intake = key("--name", "load-intake", "--scope", "intake")
        port = _free_port()
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        log = open(os.environ.get("ESCALADE_LOAD_LOG", os.devnull), "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [*ESCALADE, "serve", "--no-engine", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(server)
        worker = subprocess.Popen([*ESCALADE, "worker"], env=env, **quiet)
        procs.append(worker)
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, server)
        load = Load(base, rw, intake)
        stop = time.monotonic() + seconds

        def drive(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(timeout=30) as client:
                while time.monotonic() < stop:
                    load.one(client, rng)

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(clients)]
        started = time.monotonic()
        for th in threads:
            th.start()
        time.sleep(seconds / 2)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = time.monotonic() - started
        worker = subprocess.Popen([*ESCALADE, "worker"], env=env, **quiet)
        procs.append(worker)
        for th in threads:
            th.join()
        wall = time.monotonic() - started
        return _check(url, load, wall, killed_at)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        _drop(pg, name)


def _ref(target: str) -> str:
    return target.removeprefix("escalation:")


def _check(url: str, load: Load, wall: float, killed_at: float) -> dict[str, Any]:
    from escalade.auth.audit import verify
    from escalade.store.db import SqlStore

    store = SqlStore(url)
    try:
        with store.unit_of_work(readonly=True) as uow:
            missing = [ref for ref in load.accepted if uow.escalations.get_by_ref(ref) is None]
            audit = uow.audit.entries(limit=10_000_000)
        created = {
            e.target.removeprefix("escalation:") for e in audit if e.action == "escalation.create"
        }
        acked = {
            e.target.removeprefix("escalation:")
            for e in audit
            if e.action == "escalation.acknowledge"
        }
        count, problems = verify(store)
    finally:
        store.dispose()
    total = sum(len(v) for v in load.latency.values())

    def pct(values: list[float], q: float) -> float:
        return (
            round(statistics.quantiles(values, n=100)[q - 1] * 1000, 1) if len(values) > 2 else 0.0
        )

    return {
        "seconds": round(wall, 1),
        "worker_killed_at_s": round(killed_at, 1),
        "requests": total,
        "requests_per_s": round(total / wall, 1),
        "by_kind": {
            kind: {
                "n": len(v),
                "p50_ms": pct(v, 50),
                "p95_ms": pct(v, 95),
                "status": dict(load.status[kind]),
            }
            for kind, v in sorted(load.latency.items())
        },
        "accepted_escalations": len(load.accepted),
        "accepted_missing": len(missing),
        "accepted_without_audit": len(set(load.accepted) - created),
        "acknowledged_without_audit": len(set(load.acked) - acked),
        "audit_entries": count,
        "audit_problems": [str(p) for p in problems],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pg", default=os.environ.get("ESCALADE_TEST_PG_URL", DEFAULT_PG))
    args = parser.parse_args()
    result = run(args.seconds, args.clients, args.pg)
    print(json.dumps(result, indent=2))
    ok = (
        result["accepted_missing"] == 0
        and result["accepted_without_audit"] == 0
        and result["acknowledged_without_audit"] == 0
        and not result["audit_problems"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
