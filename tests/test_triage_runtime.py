"""A triage model decides through NumPy alone (``escalade.triage.runtime``), with the
scikit-learn pipeline's own numbers, bit for bit: the start-up of ``escalade route`` with a
model no longer imports scikit-learn, SciPy or skops (issue 17: under 1 s), and every
decision stays byte-identical."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.routing.models import EscalationInput
from escalade.routing.router import Router
from escalade.triage.model import (
    TriageClassifier,
    feature_rows,
    load_model,
    save_model,
    train,
)

WHEN = datetime(2026, 12, 1, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"

# texts that test the analyzers' corners: accents, case, punctuation, empty, one letter,
# repeated words, numbers, tabs and runs of spaces, non-Latin letters
CORNERS = [
    "Crème brûlée at the CAFÉ: ÅNGSTRÖM naïve façade",
    "",
    "a",
    "!!! ??? ...",
    "refund refund refund refund",
    "card 4242 4242 4242 4242 declined at 23:59",
    "two\tspaces  and\n\nnew lines",
    "Карта не пришла",
    "password password reset reset reset",
]


def _tickets(texts: list[str]) -> list[EscalationInput]:
    tiers = ["", "gold", "premium", "free", "GOLD "]
    return [
        EscalationInput.model_validate(
            {
                "description": t,
                "customer": {"tier": tiers[i % 5], "monthly_value": [None, 0, 9.5, 1200][i % 4]},
                "impact": {"users_affected": [None, 1, 40][i % 3]},
                "amount": [None, 0, 19.99, 5000][(i + 1) % 4],
            }
        )
        for i, t in enumerate(texts)
    ]


SMALL = {
    "billing": ["I was charged twice for {}", "refund my invoice for {}", "the bill for {}"],
    "engineering": ["the app crashes when I open {}", "error 500 on {}", "{} page is broken"],
    "security": ["someone logged into my {}", "my password for {} was changed", "2fa on {}"],
}
THINGS = ["march", "the plan", "photos", "my account", "the dashboard", "settings", "billing"]


def _small(labels: list[str]) -> tuple[list[EscalationInput], list[str]]:
    xs: list[EscalationInput] = []
    ys: list[str] = []
    for label in labels:
        for frame in SMALL[label]:
            for i, thing in enumerate(THINGS):
                xs.extend(_tickets([frame.format(thing)])[:1])
                if i % 2:
                    xs[-1] = _tickets(["x", frame.format(thing)])[1]
                ys.append(label)
    return xs, ys


def _probabilities(clf: TriageClassifier, inputs: list[EscalationInput]) -> np.ndarray:
    return np.array(
        [[p.probabilities[label] for label in clf.labels] for p in clf.predict_many(inputs)]  # type: ignore[index]
    )


@pytest.mark.parametrize(
    "labels", [["billing", "engineering", "security"], ["billing", "security"]]
)
def test_the_runtime_gives_the_pipelines_numbers_exactly(labels: list[str]) -> None:
    xs, ys = _small(labels)
    clf = train(xs, ys, field="team", created_at=WHEN)
    assert clf.runtime is not None
    probe = _tickets(
        [f"{w} {t}" for w in ("charged", "crash", "password", "hello") for t in THINGS] + CORNERS
    )
    ours = _probabilities(clf, probe)
    theirs = np.asarray(clf.pipeline.predict_proba(feature_rows(probe)))
    assert np.array_equal(ours, theirs)  # bit for bit, not approximately
    through_sklearn = TriageClassifier(clf.pipeline, clf.metadata, clf.name, use_runtime=False)
    assert through_sklearn.runtime is None
    assert clf.predict_many(probe) == through_sklearn.predict_many(probe)  # words too


def test_a_saved_model_decides_without_importing_scikit_learn(tmp_path: Path) -> None:
    xs, ys = _small(["billing", "engineering", "security"])
    path = save_model(train(xs, ys, field="team", created_at=WHEN), tmp_path / "team.model")
    code = (
        "import sys, json\n"
        "from escalade.triage.model import load_model\n"
        "from escalade.routing.models import EscalationInput\n"
        f"clf = load_model({str(path)!r})\n"
        "p = clf.predict(EscalationInput(subject='refund my invoice please'))\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'skops'})\n"
        "print(json.dumps([p.label, heavy]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["billing", []]
    # the pipeline is still there, read (through skops, trusted types only) when asked for
    loaded = load_model(path)
    assert [str(c) for c in loaded.pipeline.classes_] == loaded.labels


@pytest.mark.skipif(
    not (DATA / "train.csv").exists() or not (DATA / "teams.json").exists(),
    reason=f"BANKING77 NOT FOUND at {DATA}",
)
def test_route_decisions_are_byte_identical_on_real_messages(tmp_path: Path) -> None:
    with (DATA / "train.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    to_team = json.loads((DATA / "teams.json").read_text(encoding="utf-8"))["intent_to_team"]
    labelled = [(r["text"], to_team[r["category"]]) for r in rows if r["category"] in to_team]
    random.Random(3).shuffle(labelled)
    fit, held = labelled[:1500], labelled[1500:2100]
    clf = train(
        [EscalationInput(description=t) for t, _ in fit], [y for _, y in fit],
        field="team", created_at=WHEN,
    )  # fmt: skip
    save_model(clf, tmp_path / "team.model")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "id: banking77\nteams: [{id: frontline}, {id: security}, {id: billing}, "
        "{id: engineering}, {id: customer_success}]\npriorities: [{id: P3}]\n"
        "routing:\n  default_priority: P3\n  triage_queue: frontline\n"
        "  triage: [{field: team, model: team.model, min_confidence: 0.5}]\n",
        encoding="utf-8",
    )
    texts = [t for t, _ in held] + CORNERS
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps({"description": t}) for t in texts) + "\n")
    result = CliRunner().invoke(app, ["route", "--policy", str(policy), str(batch)])
    assert result.exit_code == 0, result.output
    # the same decisions through the scikit-learn pipeline, written as the command writes
    from escalade.loading import load_policy

    sklearn_clf = TriageClassifier(clf.pipeline, clf.metadata, "team.model", use_runtime=False)
    router = Router(load_policy(policy), {"team": sklearn_clf})
    decisions = router.route_many([EscalationInput(description=t) for t in texts], WHEN)
    expected = "".join(d.model_dump_json() + "\n" for d in decisions)
    assert result.stdout == expected
