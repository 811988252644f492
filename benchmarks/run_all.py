"""``make bench``: every benchmark in turn; each prints JSON, collected in bench-results/.

    .venv/bin/python -m benchmarks.run_all [--quick]

The figures quoted in docs/PERFORMANCE.md come from these commands (each section there
names its own). The machine has 2 cores and is noisy: run on an idle machine and quote
medians.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-results"

BENCHMARKS = {
    "timers": [sys.executable, "benchmarks/bench_timers.py"],
    "simulate": [sys.executable, "-m", "benchmarks.bench_simulate"],
    "triage": [sys.executable, "benchmarks/bench_triage.py"],
    "intake": [sys.executable, "-m", "benchmarks.bench_intake"],
    "delivery": [sys.executable, "-m", "benchmarks.bench_delivery"],
    "alert_intake": [sys.executable, "-m", "benchmarks.bench_alert_intake"],
    "storm": [sys.executable, "-m", "benchmarks.bench_storm"],
}
QUICK = {
    "timers": ["--n", "20000", "--window", "10"],
    "simulate": ["--escalations", "200", "--runs", "1"],
    "triage": [],
    "intake": ["--open", "100,10000", "--requests", "300"],
    "delivery": ["--per-channel", "20", "--log-messages", "1000"],
    "alert_intake": ["--alerts", "50"],
    "storm": ["--duration", "3", "--stores", "sqlite", "--stage-n", "50"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("only", nargs="*", help=f"which to run: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(exist_ok=True)
    failed = 0
    for name, cmd in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        full = cmd + (QUICK[name] if args.quick else [])
        print(f"== {name}: {' '.join(full[1:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        done = subprocess.run(full, cwd=ROOT, capture_output=True, text=True)
        (OUT / f"{name}.json").write_text(done.stdout)
        sys.stdout.write(done.stdout)
        if done.returncode != 0:
            failed += 1
            print(done.stderr[-2000:], file=sys.stderr)
        print(f"   {time.perf_counter() - started:.0f} s, exit {done.returncode}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
