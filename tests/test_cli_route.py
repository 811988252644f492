"""``escalade route`` as spec/route.md describes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escalade.cli import route as route_cli
from escalade.cli.main import app

POLICY = str(Path(__file__).parent / "fixtures" / "small-policy.yaml")
runner = CliRunner()


def run(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def test_one_input_prints_one_object(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(json.dumps({"subject": "site down", "ticket": {"id": "T-1"}}))
    r = run("route", "--policy", POLICY, str(f))
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["priority"] == "P0" and d["team"] == "frontline"


def test_stdin_array_prints_json_lines_in_order() -> None:
    items = [{"subject": "data loss"}, {"subject": "site down"}, {"subject": "hello"}]
    r = run("route", "--policy", POLICY, "-", stdin=json.dumps(items))
    assert r.exit_code == 0
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [d["priority"] for d in lines] == ["P1", "P0", "P2"]


def test_batch_bad_line_reports_error_and_goes_on(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(
        '{"subject": "data loss"}\n{"subject": "x", "amount": "ten"}\n'
        '{oops\n{"subject": "site down"}\n'
    )
    r = run("route", "--policy", POLICY, str(f))
    assert r.exit_code == 1
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 4
    assert lines[0]["category"] == "data_loss"
    number = "Input should be a valid number, unable to parse string as a number"
    assert lines[1] == {"error": f"{f}:2: amount: {number}"}
    assert lines[2]["error"].startswith(f"{f}:3: not JSON")
    assert lines[3]["priority"] == "P0"
    assert "Traceback" not in r.output


def test_chunks_keep_order_and_errors_across_their_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a long batch is routed a chunk at a time: here chunks of 2, errors on their edges
    monkeypatch.setattr(route_cli, "CHUNK", 2)
    subjects = ["data loss", None, "site down", "hello", None, "data loss", "site down"]
    lines = [json.dumps({"subject": s}) if s else "[1, 2]" for s in subjects]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(lines) + "\n")
    r = run("route", "--policy", POLICY, str(f))
    assert r.exit_code == 1
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [d.get("priority") for d in out] == ["P1", None, "P0", "P2", None, "P1", "P0"]
    assert out[1] == {"error": f"{f}:2: an escalation input is a JSON object, not list"}
    assert out[4]["error"].startswith(f"{f}:5: ")
    assert "2 of 7 inputs could not be routed" in r.stderr


def test_single_invalid_input_exits_1_with_message(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(json.dumps({"subject": "x", "category": "nope"}))
    r = run("route", "--policy", POLICY, str(f))
    assert r.exit_code == 1
    assert "category: 'nope' is not a category of this policy" in r.stderr
    assert r.stdout == ""


def test_explain_lists_missing_fields_and_reasons(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(json.dumps({"subject": "photos disappeared"}))
    r = run("route", "--policy", POLICY, str(f), "--explain")
    assert r.exit_code == 0
    assert "Missing information:\n  - ticket_id" in r.stdout
    assert "1. category 'data_loss': the text mentions 'disappeared'" in r.stdout


def test_invalid_policy_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nteams: [{id: a, level: nowhere}]\n")
    f = tmp_path / "in.json"
    f.write_text("{}")
    r = run("route", "--policy", str(bad), str(f))
    assert r.exit_code == 1
    assert f"{bad}:2:" in r.stderr and "unknown level 'nowhere'" in r.stderr
    r = run("route", "--policy", POLICY, str(tmp_path / "absent.json"))
    assert r.exit_code == 1 and "cannot read" in r.stderr


def test_explain_names_the_example_and_the_runner_up(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(json.dumps({"subject": "All the photos in my album are gone"}))
    photo = str(Path(__file__).parents[1] / "examples" / "policies" / "photo-support-triage.yaml")
    r = run("route", "--policy", photo, str(f), "--explain")
    assert r.exit_code == 0, r.output
    assert "1. category 'data_loss': close to category 'data_loss' example" in r.stdout
    assert "Models:\n  - policy examples: category 'data_loss' example 'My albums are gone" in (
        r.stdout
    )
    assert "; runner-up '" in r.stdout and "; used" in r.stdout
    r = run("route", "--policy", photo, str(f))
    decision = json.loads(r.stdout)
    assert {"category", "team", "level", "priority", "handling", "missing", "reasons"} <= set(
        decision
    )
    assert decision["triage"][0]["reference"].startswith("My albums are gone")


def test_explain_says_why_a_close_example_was_not_used(tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(json.dumps({"subject": "Where can I buy a nice birthday cake for my dog?"}))
    household = str(
        Path(__file__).parents[1] / "examples" / "policies" / "household-escalations.yaml"
    )
    r = run("route", "--policy", household, str(f), "--explain")
    assert r.exit_code == 0, r.output
    assert "Triage:    a person must confirm this decision" in r.stdout
    assert "not used (under its minimum similarity, or too close to the runner-up)" in r.stdout
