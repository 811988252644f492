"""Routing speed where the similarity model decides, and start-up with a model.

    .venv/bin/python benchmarks/bench_route_speed.py [--tickets 20000] [--runs 3] [--no-model]

Prints one JSON object:

- ``route_many``: the router in one process (``escalade.batching`` as the command tunes
  it) on unique BANKING77 tickets (a ticket number appended, a new offset each run, so no
  per-text cache helps) through ``examples/policies/photo-support-triage.yaml``: almost
  none is decided by a phrase, so every ticket is compared with the policy's examples.
  Decisions per second of wall time and per CPU second, median of ``--runs``.
- ``plain_loop``: what a script would do instead: for each ticket, lower-case the text and
  test every phrase of the same policy (categories, priorities, rule texts) as a
  substring, pick the category with most hits. Issue 20 asks batch ``route`` to reach
  ≥ 0.5× this loop: ``ratio`` is route_many's rate over the loop's (CPU seconds).
- ``cli``: ``escalade route --policy P`` on one line (the start-up) and on the batch,
  medians of ``--runs``; decisions/s after start-up = tickets / (batch − start-up).
- ``startup_with_model`` (unless ``--no-model``): ``escalade route`` on one line with a
  BANKING77 team model trained by ``escalade triage train`` on the full training split
  (the model of docs/PERFORMANCE.md), median of ``--runs``, wall and CPU seconds.

The data is read from ``../shared/data/banking77`` (never copied into the repository).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from escalade.batching import batch_gc
from escalade.loading import load_router
from escalade.routing.models import EscalationInput

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "banking77"
POLICY = REPO / "examples" / "policies" / "photo-support-triage.yaml"
ESCALADE = Path(sys.executable).with_name("escalade")
WHEN = datetime(2026, 1, 5, 10, tzinfo=UTC)
MODEL_POLICY = """\
id: banking77
teams:
  - {id: frontline}
  - {id: security}
  - {id: billing}
  - {id: engineering}
  - {id: customer_success}
priorities:
  - {id: P3}
routing:
  default_priority: P3
  triage_queue: frontline
  triage:
    - {field: team, model: team.model, min_confidence: 0.5}
"""


def texts() -> list[str]:
    with (DATA / "train.csv").open(encoding="utf-8", newline="") as f:
        return [r["text"] for r in csv.DictReader(f)]


def unique(base: list[str], n: int, offset: int) -> list[str]:
    return [f"{base[i % len(base)]} (ticket {offset + i})" for i in range(n)]


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def route_many_rate(tickets: list[str]) -> tuple[float, float]:
    router = load_router(POLICY)
    inputs = [EscalationInput(description=t) for t in tickets]
    started, cpu = time.perf_counter(), time.process_time()
    with batch_gc():
        for i in range(0, len(inputs), 1000):
            router.route_many(inputs[i : i + 1000], WHEN)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(inputs) / wall, len(inputs) / cpu


def plain_loop_rate(tickets: list[str]) -> tuple[float, float]:
    """Every phrase of the policy tested as a substring of each lower-cased ticket."""
    router = load_router(POLICY)
    policy = router.policy
    categories = [
        (c.id, [p.lower() for p in c.match.phrases]) for c in policy.categories if c.match
    ]
    others = [[p.lower() for p in x.match.phrases] for x in policy.priorities if x.match]
    others += [
        [p.lower() for p in r.when.text.phrases] for r in policy.routing.rules if r.when.text
    ]
    started, cpu = time.perf_counter(), time.process_time()
    chosen = 0
    for text in tickets:
        low = text.lower()
        best, most = None, 0
        for key, phrases in categories:
            hits = sum(1 for p in phrases if p in low)
            if hits > most:
                best, most = key, hits
        for phrases in others:
            any(p in low for p in phrases)
        chosen += best is not None
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(tickets) / wall, len(tickets) / cpu


def run_cli(policy: Path, lines: Path) -> tuple[float, float]:
    before = _cpu_children()
    started = time.perf_counter()
    done = subprocess.run(
        [str(ESCALADE), "route", "--policy", str(policy), str(lines)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"escalade route failed: {done.stderr}")
    return wall, _cpu_children() - before


def write_lines(path: Path, tickets: list[str]) -> Path:
    path.write_text("".join(json.dumps({"description": t}) + "\n" for t in tickets))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tickets", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-model", action="store_true", help="Skip the start-up with a model")
    args = ap.parse_args()
    base = texts()
    out: dict[str, Any] = {"tickets": args.tickets, "runs": args.runs, "policy": POLICY.name}
    routed, looped = [], []
    for run in range(args.runs):
        batch = unique(base, args.tickets, offset=run * args.tickets)
        routed.append(route_many_rate(batch))
        looped.append(plain_loop_rate(batch))
    r_wall = statistics.median(r[0] for r in routed)
    r_cpu = statistics.median(r[1] for r in routed)
    l_wall = statistics.median(r[0] for r in looped)
    l_cpu = statistics.median(r[1] for r in looped)
    out["route_many"] = {"per_second": round(r_wall), "per_cpu_second": round(r_cpu)}
    out["plain_loop"] = {"per_second": round(l_wall), "per_cpu_second": round(l_cpu)}
    out["ratio_route_over_loop_cpu"] = round(r_cpu / l_cpu, 3)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one = write_lines(folder / "one.jsonl", unique(base, 1, offset=10**9))
        big = write_lines(folder / "batch.jsonl", unique(base, args.tickets, offset=10**8))
        starts = [run_cli(POLICY, one) for _ in range(args.runs)]
        batches = [run_cli(POLICY, big) for _ in range(args.runs)]
        startup = statistics.median(s[0] for s in starts)
        batch_wall = statistics.median(b[0] for b in batches)
        out["cli"] = {
            "startup_seconds": round(startup, 2),
            "startup_cpu_seconds": round(statistics.median(s[1] for s in starts), 2),
            "batch_seconds": round(batch_wall, 2),
            "batch_cpu_seconds": round(statistics.median(b[1] for b in batches), 2),
            "per_second_after_startup": round(args.tickets / (batch_wall - startup))
            if batch_wall > startup
            else None,
        }
        if not args.no_model:
            out["startup_with_model"] = startup_with_model(folder, one, args.runs)
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


def startup_with_model(folder: Path, one: Path, runs: int) -> dict[str, Any]:
    """`escalade route` on one line with the BANKING77 team model (trained here)."""
    to_team = json.loads((DATA / "teams.json").read_text(encoding="utf-8"))["intent_to_team"]
    history = folder / "team.csv"
    with (
        (DATA / "train.csv").open(encoding="utf-8", newline="") as f,
        history.open("w", encoding="utf-8", newline="") as out,
    ):
        writer = csv.writer(out)
        writer.writerow(["text", "team"])
        for r in csv.DictReader(f):
            if r["category"] in to_team:
                writer.writerow([r["text"], to_team[r["category"]]])
    subprocess.run(
        [str(ESCALADE), "triage", "train", str(history), "--label", "team", "--text-column",
         "text", "--label-column", "team", "--out", str(folder / "team.model")],
        check=True, capture_output=True,
    )  # fmt: skip
    policy = folder / "policy.yaml"
    policy.write_text(MODEL_POLICY, encoding="utf-8")
    times = [run_cli(policy, one) for _ in range(max(runs, 5))]
    return {
        "command": "escalade route --policy policy.yaml one.jsonl",
        "runs_seconds": [round(t[0], 2) for t in times],
        "median_seconds": round(statistics.median(t[0] for t in times), 2),
        "median_cpu_seconds": round(statistics.median(t[1] for t in times), 2),
    }


if __name__ == "__main__":
    main()
