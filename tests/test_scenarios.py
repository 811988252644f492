"""The example scenarios are acceptance tests (spec/simulate.md).

Each ``examples/scenarios/*.yaml`` is run through ``escalade simulate``; its stdout must equal
the sibling ``*.expected.jsonl``, object by object. Invalid scenarios under ``invalid/`` must
exit 1 with the message of their ``*.expected.err`` and print nothing on stdout.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from escalade.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "examples" / "scenarios"
VALID = sorted(SCENARIOS.glob("*.yaml"))
INVALID = sorted((SCENARIOS / "invalid").glob("*.yaml"))
SEEDS = {
    "platform-operations.yaml": "000",
    "photo-support-triage.yaml": "001",
    "marketplace-matrix.yaml": "002",
    "helpdesk-workflows.yaml": "003",
    "household-escalations.yaml": "004",
}
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
# Types that concern one escalation and so must carry its ref.
ESCALATION_TYPES = re.compile(
    r"^(escalation\.|notification\.|sla\.|reminder\.|postmortem\.|customer\.|alert\.)"
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_repo_root() -> Iterator[None]:
    """Paths in messages are the ones given on the command line: run from the repo root."""
    before = Path.cwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(before)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _simulate(path: Path, *extra: str) -> Any:
    return runner.invoke(app, ["simulate", _rel(path), *extra])


def _objects(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _readable(objs: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(o, ensure_ascii=False, sort_keys=True) for o in objs]


def test_there_are_enough_scenarios() -> None:
    assert len(VALID) >= 5
    assert len(INVALID) >= 3


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_scenario_output_matches_expected(path: Path, store: str) -> None:
    """On the memory store (the default) and on SQLite through the production SQL."""
    expected_file = path.with_name(path.stem + ".expected.jsonl")
    assert expected_file.exists(), f"{_rel(expected_file)} is missing"
    result = _simulate(path, "--store", store)
    assert result.exit_code == 0, result.output
    got = _objects(result.stdout)
    want = _objects(expected_file.read_text(encoding="utf-8"))
    if got != want:
        diff = "\n".join(
            difflib.unified_diff(
                _readable(want), _readable(got), "expected", "simulate", lineterm="", n=2
            )
        )
        pytest.fail(f"{_rel(path)}: output differs from {expected_file.name}:\n{diff}")


def test_an_unknown_store_is_refused() -> None:
    result = _simulate(VALID[0], "--store", "redis")
    assert result.exit_code == 1
    assert "--store: 'redis' is not one of memory, sqlite" in result.stderr


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_scenario_output_is_json_lines(path: Path) -> None:
    result = _simulate(path)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, "a scenario that prints nothing shows nothing"
    previous = ""
    for n, line in enumerate(lines, 1):
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {n} is not a JSON object"
        assert isinstance(obj.get("type"), str) and obj["type"], f"line {n}: no type"
        at = obj.get("at")
        assert isinstance(at, str) and UTC_Z.match(at), f"line {n}: at {at!r} is not UTC with Z"
        assert at >= previous, f"line {n}: {at} is before {previous}"
        previous = at
        if ESCALATION_TYPES.match(obj["type"]) or obj["type"] == "trigger.fired":
            assert isinstance(obj.get("ref"), str) and obj["ref"], f"line {n}: no ref"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_scenario_table_format_runs(path: Path) -> None:
    result = _simulate(path, "--format", "table")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["at", "ref", "type"]
    events = _objects(path.with_name(path.stem + ".expected.jsonl").read_text(encoding="utf-8"))
    rows = [line for line in lines[1:] if line[:1].isdigit()]
    assert len(rows) == len(events)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_scenario_is_refused(path: Path) -> None:
    expected = path.with_name(path.stem + ".expected.err").read_text(encoding="utf-8").strip()
    result = _simulate(path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == expected
    assert "Traceback" not in result.stderr


def test_every_seed_has_a_scenario() -> None:
    covered: dict[str, list[str]] = {}
    for path in VALID:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        policy = (path.parent / data["policy"]).resolve()
        assert policy.exists(), f"{_rel(path)}: policy {data['policy']} does not exist"
        seed = SEEDS.get(policy.name)
        assert seed is not None, f"{_rel(path)}: {policy.name} is not one of the seed policies"
        covered.setdefault(seed, []).append(path.name)
    missing = sorted(set(SEEDS.values()) - set(covered))
    assert not missing, f"seeds without a scenario: {missing}"


def test_every_scenario_says_what_it_shows() -> None:
    for path in [*VALID, *INVALID]:
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith("# "), f"{_rel(path)}: start with a comment saying what it shows"
