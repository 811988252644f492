"""Routing on a small policy written here: each step of the decision and its reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from escalade.policy import Policy, policy_from_text
from escalade.routing import EscalationInput, RoutingInputError, route
from escalade.routing.router import Router

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

POLICY = policy_from_text(
    """
id: unit
levels:
  - {id: L1, response: 4h, team: frontline}
  - {id: L2, response: 2h, team: specialists}
  - {id: L3, response: 1h, team: engineering}
  - {id: L4, response: 30m}
roles: [{id: cfo}]
teams:
  - {id: frontline, level: L1}
  - {id: specialists, level: L2}
  - {id: engineering, level: L3}
  - {id: billing, level: L2}
  - {id: security, level: L3}
priorities:
  - {id: P0, aliases: [Critical], match: {phrases: [site down, completely down]}, response: 0}
  - {id: P1, aliases: [High], response: 1h, first_response: {chat: {target: 2m, maximum: 5m}}}
  - {id: P2, response: 4h}
  - {id: P3, response: 24h}
handling:
  - {id: confidential, kind: confidential}
  - {id: no_customer_reply, kind: no_customer_reply}
authority:
  actions:
    - id: disputes
      bands:
        - {below: 100, authority: L1}
        - {from: 100, below: 500, authority: L2}
        - {from: 500, through: 10000, authority: L3}
        - {over: 10000, authority: cfo}
categories:
  - id: data_loss
    owner: engineering
    priority: P1
    match: {phrases: [data loss, disappeared]}
    required: [ticket_id, customer_email]
  - id: payment_dispute
    owner: billing
    priority: P2
    authority: disputes
    match: {phrases: [dispute, chargeback]}
  - id: security_vulnerability
    owner: engineering
    also: [security]
    priority: P0
    handling: [confidential, no_customer_reply]
    match: {patterns: ['\\bxss\\b', 'sql injection']}
  - id: general
    level: L1
    priority: P3
routing:
  default_priority: P3
  triage_queue: frontline
  vip_monthly_value: 100
  rules:
    - id: widespread-data-loss
      when: {category: [data_loss], users_affected: {over: 1}}
      then: {min_priority: P0}
    - id: vip
      when: {vip: true}
      then: {min_priority: P1, tags: [vip]}
    - id: angry
      when: {dissatisfied: true}
      then: {min_priority: P1}
    - id: outage-to-eng
      when: {text: {phrases: [outage]}}
      then: {category: general, team: engineering}
triggers:
  - id: legal-threat
    kind: management
    when: {legal_language: true}
    then: {min_level: L4, notify: [cfo]}
""",
    "unit.yaml",
)


def decide(**kwargs: object):
    return route(POLICY, EscalationInput.model_validate(kwargs), NOW)


def test_category_from_phrase_and_default_priority() -> None:
    d = decide(subject="Photos disappeared after upload", ticket={"id": "T-1"})
    assert (d.category, d.team, d.priority, d.level) == ("data_loss", "engineering", "P1", "L3")
    assert d.reasons[0] == "category 'data_loss': the text mentions 'disappeared'"
    assert d.missing == ["customer_email"]
    assert d.response_target == "1h"


def test_rule_raises_priority_for_many_users() -> None:
    d = decide(subject="data loss", impact={"users_affected": 40})
    assert d.priority == "P0"
    assert "widespread-data-loss" in d.rules
    assert any("40 users affected, over 1" in r for r in d.reasons)


def test_given_category_and_priority_alias_are_kept() -> None:
    d = decide(subject="whatever", category="payment_dispute", priority="high")
    assert (d.category, d.priority, d.team) == ("payment_dispute", "P1", "billing")
    assert d.reasons[:2] == [
        "category 'payment_dispute' was given with the escalation",
        "priority 'P1' was given with the escalation",
    ]


def test_priority_phrase_more_urgent_than_category_default() -> None:
    d = decide(subject="site down and data loss")
    assert d.priority == "P0"
    assert "more urgent than the category's default 'P1'" in d.reasons[1]


@pytest.mark.parametrize(
    ("amount", "authority", "level"),
    [
        (99.99, ["L1"], "L1"),  # a band naming a level sets it when the category has none
        (100, ["L2"], "L2"),
        (500, ["L3"], "L3"),
        (10000, ["L3"], "L3"),
        (10000.01, ["cfo"], "L2"),
    ],
)
def test_amount_bands(amount: float, authority: list[str], level: str) -> None:
    d = decide(subject="chargeback", amount=amount)
    assert d.category == "payment_dispute"
    assert d.authority == authority
    assert d.level == level
    assert any("band" in r and "decides" in r for r in d.reasons)
    if authority == ["cfo"]:
        assert "cfo" in d.notify


def test_vip_by_monthly_value_raises_priority() -> None:
    d = decide(subject="how do I export?", customer={"monthly_value": 250})
    assert d.priority == "P1"
    assert "vip" in d.tags
    cheap = decide(subject="how do I export?", customer={"monthly_value": 100})
    assert cheap.priority == "P3"


def test_dissatisfaction_detected() -> None:
    d = decide(subject="This is the worst, terrible, awful service. I am furious and disgusted.")
    assert d.signals is not None and d.signals.dissatisfied
    assert d.priority == "P1"
    calm = decide(subject="Thanks, a quick question about exports please")
    assert calm.signals is not None and not calm.signals.dissatisfied


def test_legal_language_is_a_management_trigger() -> None:
    d = decide(subject="I will contact my attorney about this")
    assert d.triggers == ["legal-threat"]
    assert d.level == "L4"
    assert "cfo" in d.notify
    assert any("management trigger 'legal-threat' fired" in r for r in d.reasons)


def test_engaged_teams_and_handling() -> None:
    d = decide(subject="Stored XSS in the profile page")
    assert d.category == "security_vulnerability"
    assert (d.team, d.also) == ("engineering", ["security"])
    assert d.handling == ["confidential", "no_customer_reply"]


def test_rule_sets_category_and_team() -> None:
    d = decide(subject="outage in EU")
    assert (d.category, d.team) == ("general", "engineering")
    assert d.reasons[0].startswith("rule 'outage-to-eng' set category 'general'")


def test_level_team_when_no_owner_and_triage_queue() -> None:
    d = decide(subject="hello", category="general")
    assert (d.team, d.level) == ("frontline", "L1")
    nothing = decide(subject="zzz qqq")
    assert nothing.needs_triage
    assert nothing.category is None and nothing.team == "frontline"
    assert any("triage queue" in r for r in nothing.reasons)


def test_first_response_per_channel() -> None:
    d = decide(subject="x", category="general", priority="P1", channel="chat")
    assert d.response_target == "2m"


def test_unknown_category_or_priority_is_an_input_error() -> None:
    with pytest.raises(RoutingInputError, match="category: 'nope' is not a category"):
        decide(subject="x", category="nope")
    with pytest.raises(RoutingInputError, match="priority: 'P9' is not a priority"):
        decide(subject="x", priority="P9")


class FixedModel:
    """An in-memory triage model: always the same distribution over its labels."""

    name = "intents.model"

    def __init__(self, dist: dict[str, float]):
        self.dist = dist

    def predict(self, inp: EscalationInput):  # type: ignore[no-untyped-def]
        from escalade.triage.model import Prediction

        ranked = sorted(self.dist.items(), key=lambda kv: -kv[1])
        return Prediction(
            label=ranked[0][0],
            probability=ranked[0][1],
            runner_up=ranked[1][0],
            runner_up_probability=ranked[1][1],
            top_words=["charged"],
            probabilities=dict(self.dist),
        )

    def predict_many(self, inputs):  # type: ignore[no-untyped-def]
        return [self.predict(i) for i in inputs]


def unchecked(text: str) -> Policy:
    """A policy whose model file does not exist (the model here lives in memory)."""
    return Policy.model_validate(yaml.safe_load(text))


LEARNED = unchecked(
    """
id: learned
teams: [{id: frontline}, {id: billing}, {id: engineering}]
routing:
  triage_queue: frontline
  triage:
    - field: team
      model: intents.model
      min_confidence: 0.5
      label_map: {refund: billing, double_charge: billing, fee: billing, crash: engineering}
"""
)


def test_model_labels_mapped_to_one_team_add_up() -> None:
    # no single intent reaches 0.5, but the billing intents together do
    model = FixedModel({"crash": 0.34, "refund": 0.30, "double_charge": 0.24, "fee": 0.12})
    d = route(LEARNED, EscalationInput(subject="money gone"), NOW, {"team": model})
    assert d.team == "billing" and not d.needs_triage
    guess = d.triage[0]
    assert (guess.label, guess.probability) == ("billing", 0.66)
    assert (guess.runner_up, guess.runner_up_probability) == ("engineering", 0.34)
    assert any("probability 0.66 (sum of 3 model labels)" in r for r in d.reasons)


def test_label_groups_follow_each_predictions_own_label_order() -> None:
    # the router works out how labels group once per label order: a model whose
    # probabilities come in another order (or another model) still adds up right
    router = Router(LEARNED, {"team": FixedModel({"crash": 0.6, "refund": 0.3, "fee": 0.1})})
    first = router.route(EscalationInput(subject="a"), NOW)
    reordered = {"fee": 0.1, "refund": 0.3, "crash": 0.6}
    other = FixedModel(reordered).predict(EscalationInput(subject="b"))
    other_order = router.route(EscalationInput(subject="b"), NOW, {"team": other})
    billing = FixedModel({"fee": 0.2, "crash": 0.25, "refund": 0.35, "unknown": 0.2})
    third = router.route(
        EscalationInput(subject="c"), NOW, {"team": billing.predict(EscalationInput(subject="c"))}
    )
    assert (first.team, first.triage[0].probability) == ("engineering", 0.6)
    assert (other_order.team, other_order.triage[0].probability) == ("engineering", 0.6)
    assert (other_order.triage[0].runner_up, other_order.triage[0].runner_up_probability) == (
        "billing",
        0.4,
    )
    # an unmapped label keeps its own id; billing's three intents add up to 0.55
    assert (third.team, third.triage[0].probability) == ("billing", 0.55)
    assert third.triage[0].runner_up == "engineering"


def test_equal_sums_go_to_the_first_id_the_model_lists() -> None:
    model = FixedModel({"crash": 0.5, "refund": 0.25, "fee": 0.25})
    d = route(LEARNED, EscalationInput(subject="tie"), NOW, {"team": model})
    assert (d.team, d.triage[0].runner_up) == ("engineering", "billing")
    assert d.triage[0].probability == d.triage[0].runner_up_probability == 0.5


def test_model_below_confidence_goes_to_a_person() -> None:
    model = FixedModel({"crash": 0.45, "refund": 0.40, "fee": 0.15})
    unmapped = unchecked(
        """
id: learned2
teams: [{id: frontline}, {id: crash}, {id: refund}, {id: fee}]
routing:
  triage_queue: frontline
  triage: [{field: team, model: intents.model, min_confidence: 0.5}]
"""
    )
    d = route(unmapped, EscalationInput(subject="hmm"), NOW, {"team": model})
    assert d.needs_triage and d.team == "frontline"
    assert "below the minimum confidence 0.50" in " ".join(d.reasons)


def test_a_level_floor_never_puts_an_escalation_below_its_team() -> None:
    # the legal trigger's floor is L4; engineering's L3 is lower, so L4 stands …
    d = decide(subject="Stored XSS, my lawyer says", category="security_vulnerability")
    assert d.level == "L4"
    floor_below = Policy.model_validate(
        {
            **POLICY.model_dump(by_alias=True, exclude_none=True),
            "triggers": [
                {
                    "id": "low-floor",
                    "kind": "management",
                    "when": {"legal_language": True},
                    "then": {"min_level": "L2"},
                }
            ],
        }
    )
    # … but a floor of L2 must not pull an engineering (L3) escalation down to L2
    d = route(floor_below, EscalationInput(subject="Stored XSS, my lawyer says"), NOW)
    assert (d.team, d.level) == ("engineering", "L3")
    assert any("above the floor 'L2'" in r for r in d.reasons)


def test_on_dissatisfaction_trigger_fires_without_a_when() -> None:
    unhappy = Policy.model_validate(
        {
            **POLICY.model_dump(by_alias=True, exclude_none=True),
            "triggers": [
                {
                    "id": "unhappy",
                    "kind": "automatic",
                    "on": "dissatisfaction",
                    "then": {"notify": ["cfo"]},
                }
            ],
        }
    )
    d = route(unhappy, EscalationInput(subject="Awful, terrible, I am furious"), NOW)
    assert d.triggers == ["unhappy"] and d.notify == ["cfo"]
    calm = route(unhappy, EscalationInput(subject="Thanks, all good"), NOW)
    assert calm.triggers == []
