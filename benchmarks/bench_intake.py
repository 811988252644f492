"""Intake latency as escalations pile up (issue 15): ``POST /v1/escalations`` and
``POST /v1/alerts`` against a real ``escalade serve`` (engine in-process, as ``make run``),
with 100, 10,000 and 100,000 open escalations already in the database, on SQLite and
PostgreSQL.

The open escalations are written straight into the tables (each with its grouping keys and
three pending timers, as the service would leave them: creating 100,000 through the API
would take the benchmark's whole budget). Then ``--clients`` threads send ``--requests``
creates (each a new customer, so every create files grouping keys and looks its related
escalations up) and as many alerts (each a new key, so each opens an escalation). Client-side
latency per request: p50, p99, throughput, and every 5xx.

Goal: p99 with 100,000 open within 1.5x of p99 with 100 open; no 5xx under 64 clients.

    .venv/bin/python -m benchmarks.bench_intake                       # the whole grid
    .venv/bin/python -m benchmarks.bench_intake --open 100,10000 --stores sqlite --requests 500
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from escalade.bootstrap import bootstrap
from escalade.clock import SystemClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.routing.router import Router
from escalade.settings import Settings
from escalade.store import tables as t
from escalade.store.db import SqlStore

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLI = [sys.executable, "-m", "escalade.cli.main"]
SERVE = [*CLI, "serve"]
POLICY = """\
escalade: 1
id: intake-bench
calendars: [{id: utc, timezone: UTC, hours: 24/7}]
default_calendar: utc
teams:
  - {id: support, contacts: {email: support@example.com}}
  - {id: ops, contacts: {email: ops@example.com}}
priorities:
  - {id: SEV-1, response: 15m, resolution: 4h}
  - {id: P3, response: 8h, resolution: 3d}
categories:
  - {id: general, owner: support}
  - {id: outage, owner: ops}
routing: {default_category: general, default_priority: P3}
alerts: {category: outage, severity: {critical: SEV-1}}
triggers:
  - id: same-customer
    kind: threshold
    threshold: {related: customer, more_than: 2, window: 1h}
    then: {priority: SEV-1}
"""


@contextmanager
def database(store: str, pg_base: str) -> Iterator[str]:
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(pg_base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fill(url: str, policy_path: Path, n: int) -> None:
    """``n`` open escalations as the service leaves them: one made through the service is
    the template for the rest (its snapshot, grouping key and timers)."""
    store = SqlStore(url)
    store.upgrade()
    clock = SystemClock()
    policy = policy_from_text(policy_path.read_text(), str(policy_path))
    runtime = bootstrap(Settings(), store=store, clock=clock, router=Router(policy), engine=False)
    model = runtime.service.create(
        EscalationInput(subject="template", customer={"email": "template@example.com"}),
        by="bench",
    )
    now = clock.now()
    batch = 5_000
    with store.engine.begin() as conn:
        for start in range(0, n, batch):
            rows = [
                {
                    "ref": f"OPEN-{i}",
                    "policy_version_id": model.policy_version_id,
                    "subject": f"open escalation {i}",
                    "state": "open",
                    "category": model.category,
                    "team": model.team,
                    "level": model.level,
                    "priority": model.priority,
                    "snapshot": model.snapshot,
                    "customer": {"email": f"open{i}@example.com"},
                    "package": {"subject": f"open escalation {i}"},
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for i in range(start, min(n, start + batch))
            ]
            conn.execute(t.escalations.insert(), rows)
        ids = list(
            conn.execute(
                select(t.escalations.c.id, t.escalations.c.customer).where(
                    t.escalations.c.ref.like("OPEN-%")
                )
            )
        )
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            conn.execute(
                t.escalation_groups.insert(),
                [
                    {
                        "key": f"{policy.id}:customer:{c['email']}",
                        "escalation_id": eid,
                        "created_at": now,
                    }
                    for eid, c in chunk
                ],
            )
            conn.execute(
                t.timers.insert(),
                [
                    {
                        "escalation_id": eid,
                        "kind": kind,
                        "due_at": now + timedelta(hours=hours),
                        "idempotency_key": f"esc:{eid}:bench:{kind}",
                        "payload": {"clock": "resolution", "due": now.isoformat()},
                        "state": "pending",
                        "created_at": now,
                    }
                    for eid, _ in chunk
                    for kind, hours in (("sla.warning", 3), ("sla.breach", 4), ("followup", 5))
                ],
            )
        # statistics as a database that grew to this size would have them (autovacuum's
        # analyze runs only after a while; right after a bulk load the planner is blind)
        conn.execute(text("ANALYZE"))
    store.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(url: str, policy_path: Path) -> Iterator[tuple[str, str]]:
    """``escalade serve`` on ``url`` and a key that may create and send alerts. The intake
    limits (600 and 1,200 a minute by default) are lifted: the benchmark is one client."""
    env = {**os.environ, "ESCALADE_DATABASE_URL": url, "ESCALADE_RATE_INTAKE_KEY": "1000000/min",
           "ESCALADE_RATE_INTAKE_ADDRESS": "1000000/min"}  # fmt: skip
    secret = subprocess.run(
        [*CLI, "keys", "create", "--name", f"bench-{uuid.uuid4().hex[:6]}", "--scope",
         "write,intake"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    port = _free_port()
    proc = subprocess.Popen(
        [*SERVE, "--policy", str(policy_path), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit("escalade serve did not start")
        yield base, secret
    finally:
        proc.terminate()
        proc.wait(30)


def load(
    base: str, secret: str, path: str, bodies: list[dict[str, Any]], clients: int
) -> dict[str, Any]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    local = threading.local()

    def one(body: dict[str, Any]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(
                base_url=base, timeout=120, headers={"Authorization": f"Bearer {secret}"}
            )
        start = time.perf_counter()
        try:
            status = client.post(path, json=body).status_code
        except httpx.HTTPError:
            status = 599
        took = time.perf_counter() - start
        with lock:
            latencies.append(took)
            codes[status] = codes.get(status, 0) + 1

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, bodies))
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(bodies),
        "per_second": round(len(bodies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "server_errors": sum(v for k, v in codes.items() if k >= 500),
        "refused": sum(v for k, v in codes.items() if 400 <= k < 500),
    }


def run(store: str, n_open: int, requests: int, clients: int, pg_base: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, database(store, pg_base) as url:
        policy_path = Path(tmp) / "policy.yaml"
        policy_path.write_text(POLICY)
        began = time.perf_counter()
        fill(url, policy_path, n_open)
        filled = time.perf_counter() - began
        with serving(url, policy_path) as (base, secret):
            tag = uuid.uuid4().hex[:6]
            creates = [
                {"subject": f"Cannot log in {i}", "customer": {"email": f"{tag}-{i}@example.com"}}
                for i in range(requests)
            ]
            alerts = [
                {"source": "am", "key": f"{tag}/{i}", "severity": "critical", "summary": "Down"}
                for i in range(requests)
            ]
            return {
                "store": store,
                "open": n_open,
                "fill_seconds": round(filled, 1),
                "create": load(base, secret, "/v1/escalations", creates, clients),
                "alert": load(base, secret, "/v1/alerts", alerts, clients),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", default="100,10000,100000")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--pg", default=os.environ.get("ESCALADE_TEST_PG_URL", DEFAULT_PG))
    args = parser.parse_args()
    results = []
    for store in args.stores.split(","):
        for n in (int(x) for x in args.open.split(",")):
            result = run(store, n, args.requests, args.clients, args.pg)
            print(json.dumps(result), file=sys.stderr)
            results.append(result)
    summary: dict[str, Any] = {"runs": results, "ratios": {}}
    for store in args.stores.split(","):
        mine = sorted((r for r in results if r["store"] == store), key=lambda r: r["open"])
        if len(mine) >= 2:
            low, high = mine[0], mine[-1]
            for what in ("create", "alert"):
                key = f"{store}.{what}.p99_{high['open']}_over_{low['open']}"
                summary["ratios"][key] = round(high[what]["p99_ms"] / low[what]["p99_ms"], 2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
