"""Zero-history routing: the five example policies on tickets none of them has seen.

    .venv/bin/python benchmarks/bench_zero_history.py [--split tune|held-out|all] [--misses]

``benchmarks/zero_history/<policy>.tsv`` holds, per seed, tickets written fresh in a
customer's own words (not the policy's phrases or examples), each with the team the seed's
tables give it: paraphrases, incidental-word traps ("tennis court", "press save"),
negation and hedging ("no hurry", "not urgent at all") and unrelated texts that belong in
the triage queue. The set was written before any tuning. Every third ticket of each file
(the 3rd, 6th, 9th, …) is *held out*: tune on the others, report both.

A ticket counts as

- **right** when the decided team is the expected one (for an unrelated text: the triage
  queue, or the team the policy sends undecided tickets to);
- **queue** when it went to the triage queue (or the policy's default) but belongs elsewhere;
- **wrong** when it went to another team.

Prints one JSON object: per policy and split, the counts and shares, and the totals.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from escalade.loading import load_router
from escalade.routing.models import EscalationInput

REPO = Path(__file__).resolve().parents[1]
TICKETS = REPO / "benchmarks" / "zero_history"
POLICIES = REPO / "examples" / "policies"
WHEN = datetime(2026, 1, 5, 10, tzinfo=UTC)


@dataclass(frozen=True)
class Ticket:
    policy: str
    team: str
    kind: str
    text: str
    held_out: bool


def load_tickets(folder: Path = TICKETS) -> list[Ticket]:
    """Every ticket of every ``<policy>.tsv`` file; every third of a file is held out."""
    out: list[Ticket] = []
    for path in sorted(folder.glob("*.tsv")):
        n = 0
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise SystemExit(f"{path}:{lineno}: expected team<TAB>kind<TAB>text")
            n += 1
            team, kind, text = parts
            out.append(Ticket(path.stem, team, kind, text, held_out=n % 3 == 0))
    return out


def outcome(team: str, expected: str, queue: str | None) -> str:
    if team == expected:
        return "right"
    if team == queue:
        return "queue"
    return "wrong"


def run(split: str, show_misses: bool) -> dict[str, Any]:
    tickets = [
        t
        for t in load_tickets()
        if split == "all" or (t.held_out if split == "held-out" else not t.held_out)
    ]
    result: dict[str, Any] = {"split": split, "policies": {}}
    totals = {"right": 0, "wrong": 0, "queue": 0, "count": 0}
    misses: list[dict[str, str]] = []
    for policy in sorted({t.policy for t in tickets}):
        router = load_router(POLICIES / f"{policy}.yaml")
        mine = [t for t in tickets if t.policy == policy]
        decisions = router.route_many([EscalationInput(subject=t.text) for t in mine], WHEN)
        queue = router.policy.routing.triage_queue
        counts = {"right": 0, "wrong": 0, "queue": 0, "count": len(mine)}
        for t, d in zip(mine, decisions, strict=True):
            kind = outcome(d.team, t.team, queue)
            counts[kind] += 1
            if kind != "right":
                misses.append(
                    {
                        "policy": policy,
                        "expected": t.team,
                        "got": d.team,
                        "outcome": kind,
                        "text": t.text,
                        "why": d.reasons[0] if d.reasons else "",
                    }
                )
        for k in totals:
            totals[k] += counts[k]
        result["policies"][policy] = {
            **counts,
            "right_share": round(counts["right"] / len(mine), 4),
            "wrong_share": round(counts["wrong"] / len(mine), 4),
            "queue_share": round(counts["queue"] / len(mine), 4),
        }
    n = totals["count"] or 1
    result["total"] = {
        **totals,
        "right_share": round(totals["right"] / n, 4),
        "wrong_share": round(totals["wrong"] / n, 4),
        "queue_share": round(totals["queue"] / n, 4),
    }
    if show_misses:
        result["misses"] = misses
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=["tune", "held-out", "all"], default="all")
    ap.add_argument("--misses", action="store_true", help="List every ticket not routed right")
    args = ap.parse_args()
    out = {s: run(s, args.misses) for s in (["tune", "held-out"] if args.split == "all" else [])}
    out["all"] = run("all", args.misses) if args.split == "all" else run(args.split, args.misses)
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
