"""``policy check`` warnings (valid, but a rule that can never act): issue 16 class 7, a
category whose tickets can end up with no priority (seed 001: a security report with no
priority sat three days untouched)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.policy.validate import policy_from_text, warn_no_priority

BASE = """
id: p
teams: [{id: t}]
priorities: [{id: P1}, {id: P2}]
categories:
  - {id: security, owner: t, priority: P1}
  - {id: billing, owner: t}
"""


def test_a_category_without_priority_and_no_default_is_named() -> None:
    found = list(warn_no_priority(policy_from_text(BASE)))
    assert [path for path, _ in found] == [("categories", 1)]
    assert "category 'billing' has no priority" in found[0][1]
    assert "routing.default_priority" in found[0][1]


def test_a_policy_default_priority_covers_every_category() -> None:
    text = BASE + "routing: {default_priority: P2}\n"
    assert list(warn_no_priority(policy_from_text(text))) == []


def test_no_categories_and_no_default_is_named_at_routing() -> None:
    text = "id: p\nteams: [{id: t}]\npriorities: [{id: P1}]\n"
    assert [path for path, _ in warn_no_priority(policy_from_text(text))] == [("routing",)]


def test_policy_check_prints_warnings_with_their_line_and_still_passes(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(BASE)
    result = CliRunner().invoke(app, ["policy", "check", str(f)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"{f}:7:5: warning: categories[1]: category 'billing' has no priority" in (result.stderr)


def test_the_example_policies_give_every_escalation_a_priority() -> None:
    examples = Path(__file__).resolve().parents[1] / "examples" / "policies"
    for f in sorted(examples.glob("*.yaml")):
        result = CliRunner().invoke(app, ["policy", "check", str(f)])
        assert result.exit_code == 0, result.output
        assert "warning: category" not in result.stderr, (f.name, result.stderr)
