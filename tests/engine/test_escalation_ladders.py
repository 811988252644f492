"""Ladders through the service and the engine, on real SQLite and PostgreSQL: the seed 000
SEV-1 timeline pages the right people at the right minutes, ``unless`` stops steps after an
acknowledgement or a human response (seed 001), and ``repeat`` runs the ladder again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from escalation_harness import Harness, policy

from escalade.store import Store

T0 = datetime(2026, 3, 9, 3, 0, tzinfo=UTC)  # 3 a.m.: who gets woken, and when

LADDERS = """
id: ladders
levels:
  - {id: L3, team: engineering}
  - {id: L4, team: management}
  - {id: L5, team: executive}
roles:
  - {id: tech_lead, name: Tech Lead}
  - {id: eng_manager, name: Engineering Manager}
  - {id: eng_director, name: Eng Director}
  - {id: vp_eng, name: VP Engineering}
  - {id: cto, name: CTO}
  - {id: ceo, name: CEO}
people:
  - {id: tomas, roles: [tech_lead]}
  - {id: grace, roles: [eng_manager]}
  - {id: henrik, roles: [eng_director]}
  - {id: ines, roles: [vp_eng]}
  - {id: kwame, roles: [cto]}
  - {id: sofia, roles: [ceo]}
  - {id: lena}
teams:
  - {id: engineering, level: L3, members: [lena]}
  - {id: management, level: L4}
  - {id: executive, level: L5}
priorities:
  - {id: SEV-1, ladder: sev-1}
  - {id: SEV-1-ack, ladder: sev-1-until-ack}
  - {id: P1, ladder: no-human-response}
  - {id: P3, ladder: nag}
ladders:
  # seed 000 "Escalation Timeline", SEV-1 row
  - id: sev-1
    steps:
      - {after: 15m, notify: [{role: tech_lead}, {role: eng_manager}], level: L4,
         unless: [resolved]}
      - {after: 30m, notify: [{role: eng_director}], unless: [resolved]}
      - {after: 1h, notify: [{role: vp_eng}], unless: [resolved]}
      - {after: 2h, notify: [{role: cto}], level: L5, unless: [resolved]}
      - {after: 4h, notify: [{role: ceo}], unless: [resolved]}
  - id: sev-1-until-ack
    steps:
      - {after: 15m, notify: [{role: tech_lead}, {role: eng_manager}], unless: [acknowledged]}
      - {after: 30m, notify: [{role: eng_director}], unless: [acknowledged]}
      - {after: 1h, notify: [{role: vp_eng}], unless: [acknowledged]}
  # seed 001 "Alert if no human response in 1 hour"
  - id: no-human-response
    steps:
      - {after: 1h, notify: [{role: tech_lead}], unless: [responded]}
  - id: nag
    repeat: 2
    steps:
      - {after: 10m, notify: [{person: lena}]}
      - {after: 20m, notify: [{person: tomas}]}
categories:
  - {id: outage, owner: engineering}
routing: {default_category: outage, default_priority: P3}
"""

SEV1_TIMELINE = [
    (15, "tomas"),  # Tech Lead + Manager
    (15, "grace"),
    (30, "henrik"),  # Eng Director
    (60, "ines"),  # VP Eng
    (120, "kwame"),  # CTO
    (240, "sofia"),  # CEO
]


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness.start(store, T0)
    harness.apply(policy(LADDERS))
    return harness


def _ladder_sent(h: Harness, ref: str) -> list[tuple[int, str]]:
    """(minutes, to) of the ladder's messages (not the creation notice)."""
    return [
        (int((e.at - T0).total_seconds() // 60), e.data["to"])
        for e in h.timeline(ref, "notification.sent")
        if "ladder" in e.data
    ]


def test_the_seed_000_sev_1_timeline(h: Harness) -> None:
    h.create("E1", subject="Database corruption", priority="SEV-1")
    h.create("E2", subject="Database corruption", priority="SEV-1")
    h.advance_to(T0 + timedelta(minutes=14, seconds=59))
    assert _ladder_sent(h, "E1") == []
    h.advance_to(T0 + timedelta(minutes=45))
    h.act("E2", "resolve", by="lena")  # resolved: the rest of its ladder stops
    h.advance_to(T0 + timedelta(hours=6))

    assert _ladder_sent(h, "E1") == SEV1_TIMELINE
    assert _ladder_sent(h, "E2") == SEV1_TIMELINE[:3]
    steps = [
        (e.data["step"], e.data["via"])
        for e in h.timeline("E1", "notification.sent")
        if "ladder" in e.data
    ]
    assert steps == [
        (1, "role:tech_lead"),
        (1, "role:eng_manager"),
        (2, "role:eng_director"),
        (3, "role:vp_eng"),
        (4, "role:cto"),
        (5, "role:ceo"),
    ]
    # steps with a level raise it, with the ladder as the cause
    raised = [
        (int((e.at - T0).total_seconds() // 60), e.data["from_level"], e.data["to_level"])
        for e in h.timeline("E1", "escalation.escalated")
    ]
    assert raised == [(15, "L3", "L4"), (120, "L4", "L5")]
    assert {e.data["cause"] for e in h.timeline("E1", "escalation.escalated")} == {"ladder_step"}
    assert h.get("E1").level == "L5"


def test_unless_acknowledged_steps_stop_after_acknowledgement(h: Harness) -> None:
    h.create("E1", subject="Database corruption", priority="SEV-1-ack")
    h.create("E2", subject="Database corruption", priority="SEV-1-ack")
    h.advance_to(T0 + timedelta(minutes=20))
    h.act("E1", "acknowledge", by="lena")
    h.advance_to(T0 + timedelta(hours=2))
    assert _ladder_sent(h, "E1") == [(15, "tomas"), (15, "grace")]
    assert _ladder_sent(h, "E2") == [(15, "tomas"), (15, "grace"), (30, "henrik"), (60, "ines")]


def test_unless_responded_stops_after_a_human_comment(h: Harness) -> None:
    """Seed 001: "Alert if no human response in 1 hour"."""
    h.create("E1", subject="Photos disappeared", priority="P1")
    h.create("E2", subject="Photos disappeared", priority="P1")
    h.create("E3", subject="Photos disappeared", priority="P1")
    h.advance_to(T0 + timedelta(minutes=30))
    h.act("E1", "comment", by="lena", text="Looking at the upload logs")
    h.act("E3", "customer_reply", by="mike", text="any news?")  # the customer is no response
    h.advance_to(T0 + timedelta(hours=2))
    assert _ladder_sent(h, "E1") == []
    assert _ladder_sent(h, "E2") == [(60, "tomas")]
    assert _ladder_sent(h, "E3") == [(60, "tomas")]


def test_repeat_runs_the_ladder_again(h: Harness) -> None:
    h.create("E1", subject="Slow dashboard")
    h.advance_to(T0 + timedelta(hours=3))
    # three rounds (repeat: 2); a round lasts up to the last step plus one step spacing
    assert _ladder_sent(h, "E1") == [
        (10, "lena"),
        (20, "tomas"),
        (40, "lena"),
        (50, "tomas"),
        (70, "lena"),
        (80, "tomas"),
    ]
    steps = [e.data["step"] for e in h.timeline("E1", "notification.sent") if "ladder" in e.data]
    assert steps == [1, 2] * 3
