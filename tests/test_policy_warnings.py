"""``escalade policy check`` warnings: rules that are valid but can never act.

A warning does not fail the check (exit 0, the policy is valid); it is printed on stderr as
``FILE:LINE:COL: warning: PATH: message``, after the problems, with a count. The kind
covered here is "a trigger with no effect" (issue 16): a trigger the engine never fires
(kind ``manual``; no ``when`` on an ``on`` that does not fire by itself; ``on`` a person's
action) or one that fires but whose ``then`` changes nothing at that moment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.policy import policy_from_text
from escalade.policy.validate import trigger_without_effect

EXAMPLES = Path(__file__).parent.parent / "examples" / "policies"

BASE = """
id: warn
levels: [{id: L1}, {id: L2}]
roles: [{id: boss}]
people: [{id: pat, roles: [boss]}]
teams: [{id: desk, level: L1, members: [pat]}]
priorities: [{id: P1}, {id: P2}]
categories: [{id: x, owner: desk, priority: P2}]
triggers:
"""


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def warnings_of(triggers: str) -> list[str]:
    policy = policy_from_text(BASE + triggers)
    return [message for _, message in trigger_without_effect(policy)]


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("- {id: t, kind: manual, 'on': agent}", "never acts: kind 'manual'"),
        (
            "- {id: t, kind: automatic, 'on': classification}",
            "has no 'when' and 'on: classification'",
        ),
        ("- {id: t, kind: automatic}", "has no 'when' and no 'on'"),
        (
            "- {id: t, kind: management, 'on': customer_request, when: {vip: true}, "
            "then: {min_level: L2}}",
            "'on: customer_request' is a person's action",
        ),
        ("- {id: t, kind: automatic, 'on': sla_breach}", "has no effect"),
        (
            "- {id: t, kind: automatic, 'on': sla_breach, then: {tags: [late]}}",
            "has no effect: its 'then' sets none of team, level",
        ),
        ("- {id: t, kind: management, when: {vip: true}}", "has no effect"),
        ("- {id: t, kind: management, when: {vip: true}, then: {category: x}}", "has no effect"),
    ],
)
def test_a_trigger_that_can_never_act_is_warned(trigger: str, expected: str) -> None:
    found = warnings_of(trigger)
    assert len(found) == 1, found
    assert "trigger 't'" in found[0]
    assert expected in found[0]


@pytest.mark.parametrize(
    "trigger",
    [
        "- {id: t, kind: management, when: {vip: true}, then: {min_level: L2}}",
        "- {id: t, kind: automatic, 'on': sla_breach, then: {notify: [boss]}}",
        "- {id: t, kind: automatic, 'on': dissatisfaction, then: {min_priority: P1}}",
        "- {id: t, kind: automatic, 'on': alert}",  # names the alert's trigger.fired record
        "- {id: t, kind: automatic, when: {vip: true}, then: {tags: [vip]}}",  # tags at routing
        "- {id: t, kind: threshold, threshold: {related: text, more_than: 2, window: 1h}}",
    ],
)
def test_a_trigger_that_acts_is_not_warned(trigger: str) -> None:
    assert warnings_of(trigger) == []


def test_check_prints_warnings_on_stderr_and_passes(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        BASE
        + "- {id: documents-only, kind: manual, 'on': agent}\n"
        + "- {id: acts, kind: management, when: {vip: true}, then: {min_level: L2}}\n",
        "utf-8",
    )
    result = run("policy", "check", str(path))
    assert result.exit_code == 0
    assert result.stdout == ""  # stdout is for problems only
    lines = result.stderr.splitlines()
    warned = [line for line in lines if ": warning: " in line]
    assert len(warned) == 1
    assert warned[0].startswith(f"{path}:10:3: warning: triggers[0]: trigger 'documents-only'")
    assert "1 warning" in lines
    assert "1 policy valid" in lines


def test_an_invalid_policy_gets_problems_not_warnings(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(BASE + "- {id: documents-only, kind: manual, then: {team: nobody}}\n", "utf-8")
    result = run("policy", "check", str(path))
    assert result.exit_code == 1
    assert "unknown team 'nobody'" in result.stdout
    assert "warning" not in result.stderr


def test_the_example_policies_warn_only_about_documentation_triggers() -> None:
    """What the examples keep on purpose (gap 18 of the old SEED-COVERAGE): manual
    triggers and triggers that document a step the engine does elsewhere."""
    result = run("policy", "check", *sorted(str(p) for p in EXAMPLES.glob("*.yaml")))
    assert result.exit_code == 0
    warned = [line for line in result.stderr.splitlines() if ": warning: " in line]
    assert warned, "the examples keep documentation-only triggers"
    for line in warned:
        assert "never acts" in line or "has no effect" in line
