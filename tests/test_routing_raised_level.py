"""Routing, issue 16 class 1: a rule, trigger or amount band that raises the level reaches
the level's people — its team takes the escalation over from a team working below it; a
team a rule named, or a specialist team with no level, keeps it and the level's team is
informed; a category's own level moves nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from escalade.policy import policy_from_text
from escalade.routing import EscalationInput, route

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

POLICY = policy_from_text(
    """
id: raised
levels:
  - {id: L1, team: frontline}
  - {id: L2, team: specialists}
  - {id: L4, team: management}
  - {id: L5}
roles: [{id: finance_manager}]
teams:
  - {id: frontline, level: L1}
  - {id: specialists, level: L2}
  - {id: management, level: L4}
  - {id: legal}
  - {id: vip_desk, level: L1}
categories:
  - {id: billing, level: L1, match: {phrases: [invoice]}}
  - {id: legal_threat, owner: legal, match: {phrases: [lawsuit]}}
  - id: dispute
    level: L1
    authority: settle
    match: {phrases: [dispute]}
  - {id: outage, level: L4, match: {phrases: [outage]}}
authority:
  actions:
    - id: settle
      bands:
        - {below: 100, authority: [L1]}
        - {from: 100, below: 500, authority: [L2]}
        - {from: 500, authority: [finance_manager]}
routing:
  rules:
    - id: vip
      when: {customer_tier: [vip]}
      then: {team: vip_desk, min_level: L2}
    - id: everything-to-l5
      when: {text: {phrases: [board of directors]}}
      then: {min_level: L5}
triggers:
  - id: churn
    kind: management
    when: {text: {phrases: [cancel our contract]}}
    then: {min_level: L4}
  - id: legal
    kind: management
    when: {text: {phrases: [lawsuit]}}
    then: {min_level: L4}
"""
)


def _route(text: str, **kw: object) -> tuple[str, str | None, list[str], list[str]]:
    inp = EscalationInput.model_validate({"subject": text, **kw})
    d = route(POLICY, inp, NOW)
    return d.team, d.level, d.notify, d.reasons


def test_a_trigger_raise_hands_it_to_the_level_team() -> None:
    team, level, notify, reasons = _route("Wrong invoice, we cancel our contract")
    assert (team, level, notify) == ("management", "L4", [])
    assert reasons[-1] == (
        "management trigger 'churn' raised the level to 'L4': its team 'management' takes "
        "the escalation over from 'frontline'"
    )


def test_a_band_raise_hands_it_to_the_level_team() -> None:
    team, level, _, reasons = _route("I dispute this charge", amount=240)
    assert (team, level) == ("specialists", "L2")
    assert "the amount band of 'settle' raised the level to 'L2'" in reasons[-1]
    team, level, notify, _ = _route("I dispute this charge", amount=40)
    assert (team, level, notify) == ("frontline", "L1", [])


def test_a_team_a_rule_named_keeps_it_and_the_level_team_is_informed() -> None:
    team, level, notify, reasons = _route("Invoice question", customer={"tier": "vip"})
    assert (team, level, notify) == ("vip_desk", "L2", ["specialists"])
    assert "'specialists' is informed ('vip_desk' keeps the escalation)" in reasons[-1]


def test_a_specialist_team_keeps_it_and_the_level_team_is_informed() -> None:
    team, level, notify, _ = _route("We are preparing a lawsuit")
    assert (team, level, notify) == ("legal", "L4", ["management"])


def test_the_category_level_and_a_level_without_a_team_move_nothing() -> None:
    team, level, notify, _ = _route("Total outage")
    assert (team, level, notify) == ("management", "L4", [])  # the level's team, as before
    team, level, notify, _ = _route("Invoice for the board of directors")
    assert (team, level, notify) == ("frontline", "L5", [])  # L5 has no team
