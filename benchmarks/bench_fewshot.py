"""BANKING77 few-shot through the policy path: no trained model, only ``examples:``.

    .venv/bin/python benchmarks/bench_fewshot.py [--shots 10] [--thresholds 0.1,0.2,0.3]

The same fixed, stratified 80/20 split as ``bench_triage.py`` (seed 0). From the 80 % only
``--shots`` messages per intent (the first ones of the split, so the choice is fixed) become
the ``examples:`` of a policy with one category per intent, owned by the intent's team
(``teams.json``; intents without a team belong to the triage queue's team). The policy's
similarity model (``routing.similarity``) routes the held-out 20 % through the real router
(``route_many``). Reported per ``min_similarity`` and ``margin``:

- intent: the category decided is the message's intent (every message; a ticket sent to
  the triage queue counts as a miss in ``accuracy_overall``, and is left out of
  ``accuracy``, the accuracy over decided tickets);
- team: the team decided, over the messages whose intent has a team;
- beside it, issue 9's learned model trained on the same few messages (a peer);
- decisions per second of ``route_many`` (in process, after the policy is loaded) and the
  time to load the policy (building its similarity model).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from escalade.policy.models import Policy
from escalade.routing.models import EscalationInput
from escalade.routing.router import Router

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "banking77"
WHEN = datetime(2024, 1, 1, tzinfo=UTC)
SEED = 0
TEAMS = ["frontline", "security", "billing", "engineering", "customer_success"]


def _id(intent: str) -> str:
    """A policy id for an intent ("reverted_card_payment?" has a question mark)."""
    return intent.rstrip("?")


def few_shot_policy(
    texts: list[str],
    intents: list[str],
    to_team: dict[str, str],
    shots: int,
    threshold: float,
    margin: float,
) -> Policy:
    examples: dict[str, list[str]] = {}
    for text, intent in zip(texts, intents, strict=True):
        bucket = examples.setdefault(intent, [])
        if len(bucket) < shots:
            bucket.append(text)
    return Policy.model_validate(
        {
            "id": "banking77-few-shot",
            "teams": [{"id": t} for t in TEAMS],
            "priorities": [{"id": "P3"}],
            "categories": [
                {"id": _id(intent), "owner": to_team.get(intent, "frontline"), "examples": ex}
                for intent, ex in sorted(examples.items())
            ],
            "routing": {
                "default_priority": "P3",
                "triage_queue": "frontline",
                "similarity": {
                    "min_similarity": threshold,
                    "margin": margin,
                    "use_names": False,
                },
            },
        }
    )


def measure(
    router: Router, texts: list[str], intents: list[str], to_team: dict[str, str]
) -> dict[str, Any]:
    inputs = [EscalationInput(description=t) for t in texts]
    started = time.perf_counter()
    decisions = router.route_many(inputs, WHEN)
    took = time.perf_counter() - started
    decided = [d for d in decisions if not d.needs_triage]
    right_intent = sum(
        1
        for d, y in zip(decisions, intents, strict=True)
        if not d.needs_triage and d.category == _id(y)
    )
    team_rows = [(d, to_team[y]) for d, y in zip(decisions, intents, strict=True) if y in to_team]
    team_decided = [(d, t) for d, t in team_rows if not d.needs_triage]
    right_team = sum(1 for d, t in team_decided if d.team == t)
    return {
        "intent": {
            "count": len(decisions),
            "accuracy": round(right_intent / max(len(decided), 1), 4),
            "accuracy_overall": round(right_intent / len(decisions), 4),
            "abstained": round(1 - len(decided) / len(decisions), 4),
        },
        "team": {
            "count": len(team_rows),
            "accuracy": round(right_team / max(len(team_decided), 1), 4),
            "accuracy_overall": round(right_team / len(team_rows), 4),
            "abstained": round(1 - len(team_decided) / len(team_rows), 4),
        },
        "decisions_per_second": round(len(decisions) / took),
    }


def peer(
    tr_x: list[str],
    tr_y: list[str],
    te_x: list[str],
    te_y: list[str],
    to_team: dict[str, str],
    shots: int,
) -> dict[str, Any]:
    """Issue 9's learned model (``escalade triage train``) on the same few messages."""
    from escalade.triage.model import train

    kept: dict[str, int] = {}
    xs: list[str] = []
    ys: list[str] = []
    for x, y in zip(tr_x, tr_y, strict=True):
        if kept.get(y, 0) < shots:
            kept[y] = kept.get(y, 0) + 1
            xs.append(x)
            ys.append(y)
    clf = train([EscalationInput(description=x) for x in xs], ys, field="category", created_at=WHEN)
    preds = clf.predict_many([EscalationInput(description=x) for x in te_x])
    intent = sum(1 for p, y in zip(preds, te_y, strict=True) if p.label == y) / len(te_y)
    pairs = [(p, to_team[y]) for p, y in zip(preds, te_y, strict=True) if y in to_team]
    team = sum(1 for p, t in pairs if to_team.get(p.label, "frontline") == t) / len(pairs)
    return {"intent_accuracy": round(intent, 4), "team_accuracy": round(team, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--thresholds", default="0.1,0.2,0.3")
    ap.add_argument("--margins", default="0,0.05")
    args = ap.parse_args()
    if not (DATA / "train.csv").exists():
        sys.exit(f"BANKING77 not found at {DATA}: this benchmark needs ../shared/data/banking77")
    with (DATA / "train.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    to_team: dict[str, str] = json.loads((DATA / "teams.json").read_text(encoding="utf-8"))[
        "intent_to_team"
    ]
    texts = [r["text"] for r in rows]
    intents = [r["category"] for r in rows]
    tr_x, te_x, tr_y, te_y = train_test_split(
        texts, intents, test_size=0.2, random_state=SEED, stratify=intents
    )
    out: dict[str, Any] = {
        "split": "80/20 stratified seed 0 (as bench_triage.py)",
        "shots_per_intent": args.shots,
        "held_out": len(te_x),
        "by_min_similarity": {},
    }
    for threshold in (float(t) for t in args.thresholds.split(",")):
        for margin in (float(m) for m in args.margins.split(",")):
            started = time.perf_counter()
            router = Router(few_shot_policy(tr_x, tr_y, to_team, args.shots, threshold, margin))
            load = time.perf_counter() - started
            result = measure(router, te_x, te_y, to_team)
            result["policy_load_seconds"] = round(load, 3)
            out["by_min_similarity"][f"{threshold:g} margin {margin:g}"] = result
    out["peer_learned_model_same_shots"] = peer(tr_x, tr_y, te_x, te_y, to_team, args.shots)
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
