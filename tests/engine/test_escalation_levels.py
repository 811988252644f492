"""A level's own clocks, on SQLite and PostgreSQL: the time box of seed 003 ("Tier 1 →
Tier 2: can't resolve in 30 minutes") and the response target of the level an escalation
reaches (seed 000: L4 30 min, L5 15 min; "timeout → auto escalate → management alert")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from escalation_harness import Harness, policy

from escalade.store import Store

LEVELS = """
id: level-clocks
levels:
  - {id: T1, team: tier1, resolve_within: 30m}
  - {id: T2, team: tier2, response: 1h}
  - {id: L4, team: management, response: 30m}
  - {id: L5, team: executive, response: 15m}
teams:
  - {id: tier1, level: T1, contacts: {chat: "#tier1"}}
  - {id: tier2, level: T2, contacts: {chat: "#tier2"}}
  - {id: management, level: L4, contacts: {email: managers@example.com}}
  - {id: executive, level: L5, contacts: {email: exec@example.com}}
priorities: [{id: P2}]
sla: {on_breach: [escalate]}
categories: [{id: general, owner: tier1}]
routing: {default_priority: P2, default_category: general}
"""

T0 = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)


@pytest.fixture
def h(store: Store) -> Harness:
    h = Harness.start(store, T0)
    h.apply(policy(LEVELS))
    return h


def _escalations(h: Harness, ref: str) -> list[tuple[int, str | None, str | None, str]]:
    return [
        (
            int((e.at - T0) / timedelta(minutes=1)),
            e.data["from_level"],
            e.data["to_level"],
            e.data["cause"],
        )
        for e in h.timeline(ref, "escalation.escalated")
    ]


def test_time_box_escalates_what_tier1_cannot_resolve_in_30_minutes(h: Harness) -> None:
    h.create("E1", subject="cannot log in")
    h.advance(timedelta(minutes=29))
    assert h.get("E1").level == "T1"
    h.advance(timedelta(minutes=2))
    assert h.get("E1").level == "T2" and h.get("E1").team == "tier2"
    assert _escalations(h, "E1")[0] == (30, "T1", "T2", "sla_breach")
    breach = h.timeline("E1", "sla.breached")[0]
    assert breach.data["clock"] == "level time box" and breach.data["level"] == "T1"


def test_resolved_within_the_time_box_stays(h: Harness) -> None:
    h.create("E2", subject="cannot log in")
    h.advance(timedelta(minutes=20))
    h.act("E2", "resolve", reason="password reset")
    h.advance(timedelta(hours=2))
    assert _escalations(h, "E2") == []


def test_each_level_reached_must_respond_in_time_or_it_climbs(h: Harness) -> None:
    h.create("E3", subject="angry customer")
    h.act("E3", "escalate", to="L4", reason="customer_request")
    h.advance(timedelta(minutes=29))
    assert h.get("E3").level == "L4"
    h.advance(timedelta(minutes=2))  # L4's 30 min response target passed: on to L5
    assert h.get("E3").level == "L5"
    h.advance(timedelta(minutes=16))  # L5's 15 min passed too: nothing above
    assert [x[3] for x in _escalations(h, "E3")] == ["customer_request", "no_ack"]
    assert [e.data["clock"] for e in h.timeline("E3", "sla.breached")] == [
        "level response",
        "level response",
    ]
    assert h.timeline("E3", "escalation.at_top")


def test_a_response_at_the_new_level_stops_its_clock(h: Harness) -> None:
    h.create("E4", subject="angry customer")
    h.act("E4", "escalate", to="L4", reason="customer_request")
    h.advance(timedelta(minutes=10))
    h.act("E4", "comment", by="mgr", text="Calling the customer now")
    h.advance(timedelta(hours=1))
    assert h.get("E4").level == "L4"
    assert h.timeline("E4", "sla.breached") == []
