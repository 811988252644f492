"""``escalade policy check`` and ``policy schema`` against the policy corpus.

Every broken policy under ``policy_corpus/broken`` has a sibling ``NAME.expected`` with the
exact lines the checker must print. The check runs from ``policy_corpus`` so that FILE in
``FILE:LINE:COL: message`` is ``broken/NAME.yaml`` (and ``includes/…`` for included parts).
The corpus keeps shared parts in ``policy_corpus/includes``, beside ``broken/`` and
``valid/``, so it is checked with ``--allow-includes-outside``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.policy import load_policy

CORPUS = Path(__file__).parent / "policy_corpus"
BROKEN = sorted(p.name for p in (CORPUS / "broken").glob("*.yaml"))
VALID = sorted(p.name for p in (CORPUS / "valid").glob("*.yaml"))


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_corpus_is_big_enough() -> None:
    assert len(BROKEN) >= 45
    assert len(VALID) >= 3
    for name in BROKEN:
        assert (CORPUS / "broken" / name).with_suffix(".expected").is_file(), name


@pytest.mark.parametrize("name", BROKEN)
def test_broken_policy_lists_every_problem(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    expected = (Path("broken") / name).with_suffix(".expected").read_text("utf-8").splitlines()
    result = run("policy", "check", "--allow-includes-outside", f"broken/{name}")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == expected
    assert expected, "a broken policy has at least one problem"
    count = len(expected)
    assert f"{count} problem{'s' if count != 1 else ''} found" in result.stderr


@pytest.mark.parametrize("name", VALID)
def test_valid_policy_passes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    result = run("policy", "check", "--allow-includes-outside", f"valid/{name}")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == ""
    load_policy(f"valid/{name}", allow_includes_outside=True)  # and the library agrees


def test_several_files_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    names = ["broken/bands_gap.yaml", "valid/minimal.yaml", "broken/empty.yaml"]
    result = run("policy", "check", "--allow-includes-outside", *names)
    assert result.exit_code == 1
    expected = [
        *Path("broken/bands_gap.expected").read_text("utf-8").splitlines(),
        *Path("broken/empty.expected").read_text("utf-8").splitlines(),
    ]
    assert result.stdout.splitlines() == expected


def test_missing_file_and_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    result = run(
        "policy", "check", "--allow-includes-outside", "broken/no-such-policy.yaml", "valid"
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "broken/no-such-policy.yaml:1:1: no such file",
        "valid:1:1: is a folder, not a file",
    ]


def test_valid_files_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    result = run("policy", "check", "--allow-includes-outside", *(f"valid/{n}" for n in VALID))
    assert result.exit_code == 0
    assert f"{len(VALID)} policies valid" in result.stderr


def test_included_parts_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    policy = load_policy("valid/with_include.yaml", allow_includes_outside=True)
    assert [p.id for p in policy.people] == ["alice", "bob", "carol"]
    assert [r.id for r in policy.roles] == ["tech-lead", "cfo"]
    assert [c.id for c in policy.calendars] == ["office"]


# --------------------------------------------------------------------------- schema


def schema() -> dict[str, Any]:
    result = run("policy", "schema")
    assert result.exit_code == 0
    loaded = json.loads(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def test_schema_is_json_schema_with_sections() -> None:
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["type"] == "object"
    for section in (
        "id",
        "calendars",
        "levels",
        "roles",
        "people",
        "teams",
        "schedules",
        "priorities",
        "sla",
        "categories",
        "routing",
        "ladders",
        "triggers",
        "authority",
        "templates",
        "notifications",
        "metrics",
    ):
        assert section in s["properties"], section
    assert "id" in s.get("required", [])
    assert s.get("additionalProperties") is False


@pytest.mark.parametrize(
    "name",
    [
        "long_form.yaml",
        "minimal.yaml",
        "full.yaml",
    ],
)
def test_valid_policy_validates_against_schema(name: str) -> None:
    data = yaml.safe_load((CORPUS / "valid" / name).read_text("utf-8"))
    # JSON has no dates or times: what YAML read as one is text in the schema's eyes
    data = json.loads(json.dumps(data, default=str))
    jsonschema.Draft202012Validator(schema()).validate(data)


def test_schema_rejects_unknown_section() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema()).validate({"id": "x", "team": []})
