"""Editing rights by role: admins always; a team's leads for that team's schedules and
overrides; the roles the policy's ``editing`` section names; nobody else."""

from __future__ import annotations

import pytest

from escalade.auth.editing import may_edit
from escalade.auth.scopes import user_principal
from escalade.policy import PolicyInvalid, policy_from_text

POLICY = """
id: editing
roles: [{id: scheduler}, {id: policy_owner}]
levels: [{id: L1, team: ops}]
teams: [{id: ops, level: L1}, {id: billing, level: L1}]
priorities: [{id: P1, response: 1h}]
categories: [{id: general, owner: ops}]
routing: {default_priority: P1, default_category: general}
editing:
  policies: [policy_owner]
  schedules: [scheduler]
  overrides: [responder]
"""

PEOPLE = {
    "admin": ("admin", [], None),
    "ops lead": ("lead", ["ops"], None),
    "ops responder": ("responder", ["ops"], None),
    "billing viewer": ("viewer", ["billing"], None),
}
# (who, thing, team) → allowed
TABLE = [
    ("admin", "policies", None, True),
    ("admin", "schedules", "billing", True),
    ("ops lead", "policies", None, False),
    ("ops lead", "schedules", "ops", True),
    ("ops lead", "schedules", "billing", False),
    ("ops lead", "overrides", "ops", True),
    ("ops responder", "schedules", "ops", False),
    ("ops responder", "overrides", "billing", True),  # editing.overrides: [responder]
    ("ops responder", "policies", None, False),
    ("billing viewer", "overrides", "billing", False),
    ("billing viewer", "policies", None, False),
]


@pytest.mark.parametrize(("who", "thing", "team", "allowed"), TABLE)
def test_editing_rights(who: str, thing: str, team: str | None, allowed: bool) -> None:
    policy = policy_from_text(POLICY, "editing.yaml")
    role, teams, person = PEOPLE[who]
    principal = user_principal(f"{role}@x.co", role, teams, person=person, policy=policy)
    decision = may_edit(policy, principal, thing, team)  # type: ignore[arg-type]
    assert decision.allowed is allowed, decision.reason
    if not allowed:
        assert decision.reason.startswith("only admins")


def test_a_policy_role_named_in_editing_may_apply_policies() -> None:
    text = POLICY + "people: [{id: pat, roles: [policy_owner], contacts: {email: pat@x.co}}]\n"
    policy = policy_from_text(text, "editing.yaml")
    pat = user_principal("pat@x.co", "responder", [], policy=policy)
    assert may_edit(policy, pat, "policies").allowed
    default = policy_from_text(POLICY.split("editing:")[0], "plain.yaml")
    assert not may_edit(default, pat, "policies").allowed


def test_unknown_roles_in_editing_are_refused() -> None:
    with pytest.raises(PolicyInvalid, match="unknown role 'boss'"):
        policy_from_text(POLICY.replace("[scheduler]", "[boss]"), "bad.yaml")
