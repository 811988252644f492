"""Learned triage inside the engine: a model trained with ``escalade triage train`` and named
in a policy routes what it is sure of; a low-confidence ticket reaches the triage queue,
flagged for a person, in a ``simulate`` scenario."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from escalade.cli.main import app
from test_triage import history_rows, write_jsonl

POLICY = """\
id: learned
teams:
  - {id: frontline, contacts: {email: help@example.com}}
  - {id: billing, contacts: {email: billing@example.com}}
  - {id: engineering, contacts: {email: eng@example.com}}
  - {id: security, contacts: {email: security@example.com}}
priorities: [{id: P2, response: 4h}]
routing:
  default_priority: P2
  triage_queue: frontline
  triage:
    - {field: team, model: team.model, min_confidence: 0.6}
"""

SCENARIO = """\
policy: policy.yaml
start: 2026-03-09T09:00:00Z
until: 1h
events:
  - at: 0m
    create:
      ref: SURE
      subject: "Someone hacked my account, suspicious login and my password was stolen"
  - at: 1m
    create: {ref: VAGUE, subject: "Hello there", description: "a question"}
"""


def test_low_confidence_goes_to_the_triage_queue(tmp_path: Path) -> None:
    runner = CliRunner()
    history = write_jsonl(tmp_path / "history.jsonl", history_rows())
    trained = runner.invoke(
        app,
        ["triage", "train", str(history), "--label", "team", "--out", str(tmp_path / "team.model")],
    )
    assert trained.exit_code == 0, trained.output
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    checked = runner.invoke(app, ["policy", "check", str(tmp_path / "policy.yaml")])
    assert checked.exit_code == 0, checked.output

    result = runner.invoke(app, ["simulate", str(tmp_path / "scenario.yaml")])
    assert result.exit_code == 0, result.output
    created = {
        row["ref"]: row
        for row in map(json.loads, result.stdout.splitlines())
        if row["type"] == "escalation.created"
    }
    sure, vague = created["SURE"], created["VAGUE"]
    assert sure["team"] == "security" and not sure["needs_triage"]
    assert any("triage model 'team.model' says team 'security'" in r for r in sure["reasons"])
    assert vague["team"] == "frontline" and vague["needs_triage"] is True
    assert any("below the minimum confidence 0.60" in r for r in vague["reasons"])
    assert any("triage queue" in r for r in vague["reasons"])
