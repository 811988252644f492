"""Issue 16, "escalating reaches the people": a raised level reaches its team, a path step
naming a role reaches whoever holds it, special routes are forwarded with their ticket
note, and a ladder step that raises the level tells the level's team. Through the service
and the engine on every store, as ``simulate`` drives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from escalation_harness import Harness, only, policy

from escalade.store import Store

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # a Monday

REACH = """
id: reach
levels:
  - {id: L1, team: frontline}
  - {id: L2, team: specialists}
  - {id: L4, team: management}
roles:
  - {id: counsel, name: General Counsel}
  - {id: ceo, name: CEO}
  - {id: duty_exec, name: Duty executive, schedule: exec-duty}
  - {id: cmo, name: CMO}
people:
  - {id: ana}
  - {id: gina, roles: [counsel]}
  - {id: ed, roles: [ceo]}
  - {id: kim}
  - {id: lou}
  - {id: tara}
teams:
  - {id: frontline, level: L1, members: [ana], contacts: {email: support@x.example}}
  - {id: specialists, level: L2, contacts: {email: specialists@x.example}}
  - {id: management, level: L4, contacts: {email: mgmt@x.example}}
  - {id: legal, members: [{person: gina, role: lead}], contacts: {email: legal@x.example}}
  - {id: trust, members: [{person: tara, role: lead}], contacts: {email: trust@x.example}}
schedules:
  - id: exec-duty
    timezone: UTC
    layers: [{kind: weekly, start: "2026-03-02T00:00", people: [kim, lou]}]
priorities:
  - {id: P1, ladder: p1, notify: queue}
  - {id: P3}
ladders:
  - id: p1
    steps:
      - {after: 10m, notify: [{person: ana}], level: L2, unless: [resolved]}
handling:
  - id: legal-hold
    kind: do_not_engage
    forward_to: counsel-inbox@x.example
    ticket_note: Escalated to Legal
categories:
  - id: billing
    level: L1
    match: {phrases: [invoice]}
  - id: legal_threat
    owner: legal
    handling: [legal-hold]
    path: [{team: legal, role: counsel}, {role: ceo}]
    match: {phrases: [lawsuit]}
  - id: abuse
    owner: trust
    path: [{team: trust, role: lead}, {role: duty_exec}, {role: cmo}]
    match: {phrases: [abusive]}
  - id: complaint
    owner: trust
    path: [{role: lead}]
    match: {phrases: [rude agent]}
routing:
  default_priority: P3
  rules:
    - id: legal-to-management
      when: {category: [legal_threat]}
      then: {min_level: L4}
triggers:
  - id: churn
    kind: management
    when: {text: {phrases: [cancel our contract]}}
    then: {min_level: L4}
notifications:
  - {id: shared-room, to: {owner: true}, channel: email, address: escalations@x.example}
"""


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness.start(store, T0)
    harness.apply(policy(REACH))
    return harness


def _to(h: Harness, ref: str) -> list[str]:
    return [to for _, _, to in h.sent(ref)]


def test_a_management_trigger_hands_the_escalation_to_the_level_team_and_tells_it(
    h: Harness,
) -> None:
    h.create("C1", subject="Invoice", description="Wrong invoice again; we cancel our contract")
    esc = h.get("C1")
    assert (esc.team, esc.level) == ("management", "L4")
    created = only(h.timeline("C1", "escalation.created"))
    assert any(
        "trigger 'churn' raised the level to 'L4'" in r and "'management' takes" in r
        for r in created.data["reasons"]
    ), created.data["reasons"]
    assert "mgmt@x.example" in _to(h, "C1")
    assert "support@x.example" not in _to(h, "C1")


def test_a_specialist_team_keeps_a_raised_escalation_and_the_level_team_is_told(
    h: Harness,
) -> None:
    h.create("C2", subject="Letter", description="Our lawsuit is ready")
    esc = h.get("C2")
    assert (esc.team, esc.level) == ("legal", "L4")  # Legal works no level: it keeps it
    sent = _to(h, "C2")
    assert "legal@x.example" in sent and "mgmt@x.example" in sent


def test_a_shared_room_rule_does_not_stand_in_for_the_owning_team_and_forward_to_is_sent(
    h: Harness,
) -> None:
    h.create("C3", subject="Letter", description="Our lawsuit is ready")
    sent = _to(h, "C3")
    assert "escalations@x.example" in sent  # the rule still sends
    assert "legal@x.example" in sent  # … and the team's own address is not skipped
    sent_rows = h.timeline("C3", "notification.sent")
    forwarded = [e for e in sent_rows if e.data["to"] == "counsel-inbox@x.example"]
    assert len(forwarded) == 1 and "forward" in forwarded[0].data["via"]


def test_a_ticket_note_is_written_to_the_timeline(h: Harness) -> None:
    h.create("C4", subject="Letter", description="Our lawsuit is ready")
    notes = h.timeline("C4", "escalation.comment")
    assert [(n.actor, n.data["text"]) for n in notes] == [("escalade", "Escalated to Legal")]
    h.create("C5", subject="Invoice", description="The invoice total is wrong")
    assert h.timeline("C5", "escalation.comment") == []


def test_path_steps_naming_a_role_reach_its_holders(h: Harness) -> None:
    h.create("C6", subject="Letter", description="Our lawsuit is ready")
    h.act("C6", "escalate", by="gina")  # → General Counsel
    h.act("C6", "escalate", by="gina")  # → CEO
    steps = h.timeline("C6", "escalation.escalated")
    assert [s.data.get("owner") for s in steps] == ["legal:counsel", "legal:ceo"]
    after_create = [e for e in h.timeline("C6", "notification.sent") if e.at >= T0]
    by_step = [e.data["to"] for e in after_create if e.data.get("cause") == "manual"]
    assert by_step == ["gina", "ed"]  # the people, not legal@ twice


def test_a_lead_step_reaches_the_team_lead_and_a_role_schedule_its_on_call(h: Harness) -> None:
    h.create("C7", subject="Messages", description="He keeps sending abusive texts")
    h.act("C7", "escalate", by="tara")  # → T&S lead
    h.act("C7", "escalate", by="tara")  # → duty executive: nobody holds it, its schedule does
    manual = [e for e in h.timeline("C7", "notification.sent") if e.data.get("cause") == "manual"]
    assert [(e.data["to"], e.data["via"]) for e in manual] == [
        ("tara", "role:lead"),
        ("lou", "schedule:exec-duty"),  # kim from 2026-03-02, lou from 2026-03-09
    ]


def test_a_role_nobody_holds_is_recorded_and_the_team_told(h: Harness) -> None:
    h.create("C8", subject="Messages", description="He keeps sending abusive texts")
    for _ in range(3):
        h.act("C8", "escalate", by="tara")  # lead, duty executive, CMO (nobody)
    held = only(h.timeline("C8", "notification.held"))
    assert held.data["to"] == "role:cmo" and "nobody in the policy holds role 'cmo'" in (
        held.reason or ""
    )
    last = h.timeline("C8", "notification.sent")[-1]
    assert last.data["to"] == "trust@x.example"


def test_a_ladder_step_that_raises_the_level_tells_the_level_team(h: Harness) -> None:
    h.create("C9", subject="Invoice", description="The invoice total is wrong", priority="P1")
    h.advance(timedelta(minutes=11))
    esc = h.get("C9")
    assert (esc.team, esc.level) == ("frontline", "L2")  # the ladder does not take it away
    at_step = [to for at, _, to in h.sent("C9") if at == T0 + timedelta(minutes=10)]
    assert sorted(at_step) == ["ana", "specialists@x.example"]


def test_a_lead_step_without_a_team_reaches_the_owning_team_lead_and_keeps_the_team(
    h: Harness,
) -> None:
    h.create("C10", subject="Complaint", description="A rude agent hung up on me")
    h.act("C10", "escalate", by="tara")
    esc = h.get("C10")
    assert (esc.team, esc.owner) == ("trust", "trust:lead")
    manual = [e for e in h.timeline("C10", "notification.sent") if e.data.get("cause") == "manual"]
    assert [e.data["to"] for e in manual] == ["tara"]
