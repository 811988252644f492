"""Benchmark: ``simulate`` of one day with 1,000 escalations on the SEV policy (seed 000).

Goal (issue 3): under 2 s on a 2-core machine. Prints JSON (medians of runs):

- ``seconds_median``: parsing the scenario and running it, in this process (the policy is
  loaded once, as ``simulate`` loads it once); split into ``parse_`` and ``run_seconds``;
- ``cli_seconds_median``: the whole command, ``escalade simulate FILE > /dev/null`` in a
  new process (interpreter start-up, imports, policy and output included);
- ``--store sqlite`` runs the same day through the production SQL on SQLite, for comparison.

    .venv/bin/python -m benchmarks.bench_simulate [--escalations 1000] [--runs 3]
        [--store memory|sqlite] [--no-cli]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from escalade.batching import batch_gc
from escalade.loading import router_for
from escalade.policy import load_policy
from escalade.simulate.runner import run_scenario
from escalade.simulate.scenario import parse_scenario

POLICY = Path(__file__).resolve().parents[1] / "examples" / "policies" / "platform-operations.yaml"
SUBJECTS = [
    ("Database corruption on the primary", "SEV-1"),
    ("Campaign delivery stopped for all tenants", "SEV-2"),
    ("Dashboard slow to load", "SEV-3"),
    ("Button misaligned on settings page", "SEV-4"),
]


def scenario_text(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = [
        f"policy: {POLICY}",
        "start: 2026-03-09T00:00:00Z",
        "until: 1d",
        "events:",
    ]
    for i in range(n):
        at = rng.randrange(0, 24 * 60)
        subject, sev = SUBJECTS[rng.randrange(len(SUBJECTS))]
        lines += [
            f"  - at: {at}m",
            "    create:",
            f"      ref: E{i}",
            f"      subject: {subject}",
            f"      priority: {sev}",
            "      category: system_outage",
        ]
        if rng.random() < 0.6:
            ack = at + rng.randrange(5, 90)
            lines += [f"  - at: {ack}m", f"    acknowledge: {{ref: E{i}, by: lena}}"]
        if rng.random() < 0.4:
            done = at + rng.randrange(91, 600)
            lines += [f"  - at: {done}m", f"    resolve: {{ref: E{i}, by: lena}}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--escalations", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end command")
    args = parser.parse_args()
    policy = load_policy(POLICY)
    router = router_for(policy, POLICY)
    text = scenario_text(args.escalations)
    times, parse_times, run_times, rows = [], [], [], 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        with batch_gc():  # as the command does
            scenario = parse_scenario(text, "bench.yaml")
        t1 = time.perf_counter()
        out = run_scenario(scenario, router, store=args.store)
        t2 = time.perf_counter()
        times.append(t2 - t0)
        parse_times.append(t1 - t0)
        run_times.append(t2 - t1)
        rows = len(out)
    result: dict[str, object] = {
        "benchmark": "simulate_one_day",
        "escalations": args.escalations,
        "store": args.store,
        "output_lines": rows,
        "seconds_median": round(statistics.median(times), 3),
        "seconds_all": [round(t, 3) for t in times],
        "parse_seconds_median": round(statistics.median(parse_times), 3),
        "run_seconds_median": round(statistics.median(run_times), 3),
        "goal_seconds": 2.0,
    }
    if not args.no_cli:
        cli = _cli_times(text, args.runs, args.store)
        result["cli_seconds_median"] = round(statistics.median(cli), 3)
        result["cli_seconds_all"] = [round(t, 3) for t in cli]
    print(json.dumps(result))


def _cli_times(text: str, runs: int, store: str) -> list[float]:
    exe = Path(sys.executable).with_name("escalade")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "day.yaml"
        path.write_text(text, encoding="utf-8")
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [str(exe), "simulate", str(path), "--store", store],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - t0)
    return times


if __name__ == "__main__":
    main()
