"""Alert intake benchmark: ``POST /api/v2/alerts`` (what Prometheus pushes) → the first
page at a local receiver, in ``escalade serve``'s object graph (uvicorn on loopback, the
engine thread, SQLite in WAL mode; the policy's ladder pages a person at 0 s through the
signed-webhook channel to a local HTTP server).

For N alerts, one per request, each with its own labels (so each opens an escalation),
sent one at a time: the intake answer time (request sent → 200) and the time until the
page arrives at the receiver (request sent → page received), p50 / p99 / max. Then the
same N alerts again (repeats: one indexed lookup each, no page): intake answer time.

    .venv/bin/python -m benchmarks.bench_alert_intake --alerts 200

Prints one JSON object. Issue 20 measures the same endpoint under load with wrk, beside
Alertmanager; this one measures the path to a person.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_delivery import Arrivals, http_receiver, serving
from escalade.auth.provision import create_key
from escalade.store.db import SqlStore

POLICY = """
id: bench-alert-intake
people: [{id: ana}]
teams: [{id: ops}]
priorities: [{id: P1, ladder: page}]
ladders:
  - id: page
    steps: [{after: 0s, notify: [{person: ana}], channel: webhook, unless: []}]
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage, default_priority: P1}
alerts: {category: outage, default_priority: P1}
channels:
  - {id: b, type: webhook, carries: [webhook], url: "%s/h", signing_secret: {env: B_SECRET}}
"""


def _figures(seconds: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(max(ms), 2),
    }


def run(n: int, workdir: Path) -> dict[str, Any]:
    arrivals = Arrivals()
    receiver = http_receiver(arrivals, 200, b"ok")
    host, port = receiver.server_address[:2]
    store = SqlStore(f"sqlite:///{workdir / 'alerts.db'}")
    store.upgrade()
    key, _ = create_key(
        store, name="bench", scopes=["intake"], at=datetime.now(UTC), actor="bench",
        actor_kind="cli",
    )  # fmt: skip
    answered: list[float] = []
    paged: list[float] = []
    repeats: list[float] = []
    try:
        with serving(store, POLICY % f"http://{host}:{port}", {"B_SECRET": "s3cret"}) as base:
            client = httpx.Client(
                base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
            )

            def alert(i: int) -> list[dict[str, Any]]:
                return [
                    {
                        "labels": {"alertname": "CheckoutDown", "instance": f"web-{i}"},
                        "annotations": {"summary": f"B-{i}: checkout down on web-{i}"},
                    }
                ]

            for i in range(n):
                started = time.perf_counter()
                client.post("/api/v2/alerts", json=alert(i)).raise_for_status()
                answered.append(time.perf_counter() - started)
                paged.append(arrivals.wait(f"B-{i}") - started)
            for i in range(n):
                started = time.perf_counter()
                client.post("/api/v2/alerts", json=alert(i)).raise_for_status()
                repeats.append(time.perf_counter() - started)
            client.close()
    finally:
        receiver.shutdown()
        store.dispose()
    return {
        "alerts": n,
        "intake_answer_new": _figures(answered),
        "intake_to_page": _figures(paged),
        "intake_answer_repeat": _figures(repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps({"store": "sqlite", **run(args.alerts, Path(tmp))}, indent=2))


if __name__ == "__main__":
    main()
