"""``escalade policy check`` warns of escalation path steps naming a role that reaches
nobody (issue 16: "a path step to a role nobody holds"); the policy stays valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.policy.validate import PolicyInvalid, policy_from_text, role_step_warnings

POLICY = """
escalade: 1
id: warn
roles:
  - {id: cfo, name: CFO}
  - {id: ceo, name: CEO}
  - {id: duty, name: Duty executive, schedule: duty}
people:
  - {id: vic, roles: [cfo]}
  - {id: kim}
teams:
  - {id: billing, members: [kim]}
  - {id: finance, members: [{person: vic, role: lead}]}
schedules:
  - id: duty
    timezone: UTC
    layers: [{kind: weekly, start: "2026-01-05T09:00", people: [kim]}]
categories:
  - id: invoice
    owner: billing
    path: [{role: lead}, {team: finance, role: lead}, {role: cfo}, {role: ceo}, {role: duty},
           {role: manager}]
"""


def test_each_step_that_reaches_nobody_is_named_and_the_others_are_not() -> None:
    found = list(role_step_warnings(policy_from_text(POLICY)))
    # not warned: the finance lead (vic), the CFO (vic), the duty role (its schedule) and
    # finance's manager (no manager, but a lead)
    assert [loc for loc, _ in found] == [
        ("categories", 0, "path", 0, "role"),
        ("categories", 0, "path", 3, "role"),
    ]
    assert "lead of team 'billing', which has no lead" in found[0][1]
    assert "role 'ceo', which no person holds" in found[1][1]


def test_policy_check_prints_the_warning_with_its_line_and_still_succeeds(
    tmp_path: Path,
) -> None:
    f = tmp_path / "warn.yaml"
    f.write_text(POLICY)
    result = CliRunner().invoke(app, ["policy", "check", str(f)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # stdout lists problems only; warnings go to stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 4, lines
    assert lines[1].startswith(f"{f}:21:") and "warning: categories[0].path[3].role" in lines[1]
    assert "role 'ceo'" in lines[1]
    assert lines[2:] == ["2 warnings", "1 policy valid"]


def test_the_example_policies_have_no_such_step() -> None:
    root = Path(__file__).parent.parent / "examples" / "policies"
    result = CliRunner().invoke(app, ["policy", "check", *map(str, sorted(root.glob("*.yaml")))])
    assert result.exit_code == 0, result.output
    assert ".role: " not in result.stderr, result.stderr  # no path step to nobody


def test_a_role_schedule_must_exist() -> None:
    with pytest.raises(PolicyInvalid, match=r"roles\[2\]\.schedule: unknown schedule 'dutty'"):
        policy_from_text(POLICY.replace("schedule: duty}", "schedule: dutty}"))
