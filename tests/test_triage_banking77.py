"""Learned triage on real customer messages (BANKING77), on a small subsample to stay fast.

The data lives outside the repository, in ``../shared/data/banking77``; where it is absent
the test is skipped and says so.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from escalade.routing.models import EscalationInput
from escalade.triage.evaluate import report
from escalade.triage.model import train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"

pytestmark = pytest.mark.skipif(
    not (DATA / "train.csv").exists() or not (DATA / "teams.json").exists(),
    reason=f"BANKING77 NOT FOUND at {DATA}: the real-data triage test did not run "
    "(put train.csv and teams.json there to run it)",
)


def test_team_triage_on_real_messages_beats_chance_by_far() -> None:
    with (DATA / "train.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    to_team = json.loads((DATA / "teams.json").read_text(encoding="utf-8"))["intent_to_team"]
    labelled = [(r["text"], to_team[r["category"]]) for r in rows if r["category"] in to_team]
    random.Random(7).shuffle(labelled)
    train_rows, dev_rows = labelled[:1500], labelled[1500:2000]
    clf = train(
        [EscalationInput(description=t) for t, _ in train_rows],
        [y for _, y in train_rows],
        field="team",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    preds = clf.predict_many([EscalationInput(description=t) for t, _ in dev_rows])
    truth = [y for _, y in dev_rows]
    rep = report(truth, [p.label for p in preds], [t for t, _ in dev_rows])
    majority = Counter(truth).most_common(1)[0][1] / len(truth)
    assert sorted(clf.labels) == ["billing", "customer_success", "engineering", "security"]
    assert rep["accuracy"] > 0.85
    assert rep["accuracy"] > majority + 0.25  # majority class: ~57 %
    assert rep["macro_f1"] > 0.75
    # explanations are real words of the message
    for (text, _), p in list(zip(dev_rows, preds, strict=True))[:50]:
        assert all(w.split()[0] in text.lower() or len(w) <= 5 for w in p.top_words)
