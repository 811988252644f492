"""Triggers and handling rules through the service and the engine, on real SQLite and
PostgreSQL: monitoring alerts deduplicated by key, activity thresholds (seed 004), related
escalations becoming one incident, management triggers, and messages held or moved by the
handling rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from escalation_harness import Harness, only, policy

from escalade.service import AlertIn
from escalade.store import Store

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # Monday

TRIGGERS = """
id: triggers
calendars:
  - {id: utc, timezone: UTC, hours: 24/7}
default_calendar: utc
levels:
  - {id: L1, team: support}
  - {id: L3, team: engineering}
  - {id: L4, team: management}
teams:
  - {id: support, level: L1}
  - {id: engineering, level: L3}
  - {id: management, level: L4}
  - {id: trust_safety, level: L3}
priorities:
  - {id: P0}
  - {id: P1}
  - {id: P2}
categories:
  - {id: outage, owner: engineering, match: {phrases: [outage]}}
  - {id: login, owner: support, match: {phrases: [login]}}
  - {id: suspected_abuse, owner: trust_safety}
  - {id: general, owner: support}
routing: {default_category: general, default_priority: P2}
alerts:
  category: outage
  severity: {critical: P0, warning: P1}
triggers:
  # seed 004: "User creating >10 households per day (multiple days)"
  - id: households-over-10
    kind: threshold
    threshold: {activity: household.created, more_than: 10, window: 1d, per: actor,
                days: 2, within: 7d}
    then: {category: suspected_abuse, priority: P1}
  # seed 000: "Threshold: multiple related issues"
  - id: related-issues
    kind: threshold
    threshold: {related: category, more_than: 2, window: 1h, per: all}
    then: {priority: P0}
  # seed 000: "Customer threatens legal action"
  - id: legal-threat
    kind: management
    when: {legal_language: true}
    then: {min_level: L4}
"""


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness.start(store, T0)
    harness.apply(policy(TRIGGERS))
    return harness


def _alert(h: Harness, status: str = "firing", severity: str = "critical") -> str | None:
    esc = h.service.receive_alert(
        AlertIn(
            source="alertmanager",
            key="HighErrorRate/checkout",
            status=status,
            severity=severity,
            summary="5xx above 10 % on checkout",
        ),
    )
    h.run()
    return esc.ref if esc else None


def _refs(h: Harness) -> list[str]:
    with h.store.unit_of_work() as uow:
        return [e.ref for e in reversed(uow.escalations.find(limit=1000))]


# ------------------------------------------------------------------ alerts


def test_an_alert_key_opens_one_escalation_updates_it_and_resolves_it(h: Harness) -> None:
    ref = _alert(h)
    assert ref is not None
    h.advance(timedelta(minutes=5))
    assert _alert(h) == ref
    h.advance(timedelta(minutes=5))
    assert _alert(h) == ref
    assert _refs(h) == [ref]

    created = only(h.timeline(ref, "escalation.created"))
    assert (created.data["category"], created.data["priority"], created.data["cause"]) == (
        "outage",
        "P0",
        "trigger",
    )
    assert any("HighErrorRate/checkout" in r for r in created.data["reasons"])
    fired = only(h.timeline(ref, "trigger.fired"))
    assert (fired.data["trigger"], fired.data["refs"]) == ("alert", [ref])
    repeats = h.timeline(ref, "alert.repeated")
    assert [e.at - T0 for e in repeats] == [timedelta(minutes=5), timedelta(minutes=10)]
    assert len(h.timeline(ref, "notification.sent")) == 1  # repeats do not page again

    h.advance(timedelta(minutes=5))
    assert _alert(h, "resolved") == ref
    resolved = only(h.timeline(ref, "escalation.resolved"))
    assert (resolved.actor, resolved.data["resolution"]) == (
        "alert:alertmanager",
        "alert HighErrorRate/checkout resolved",
    )
    assert h.get(ref).state == "resolved"
    assert _alert(h, "resolved") is None  # nothing open for the key any more

    again = _alert(h, severity="warning")  # the same key firing later is a new escalation
    assert again is not None and again != ref and h.get(again).priority == "P1"
    assert _refs(h) == [ref, again]


# ------------------------------------------------------------------ activity thresholds


def _households(h: Harness, n: int, actor: str = "user_98765") -> list[str]:
    created = h.service.record_activity(actor=actor, action="household.created", count=n)
    h.run()
    return [e.ref for e in created]


def test_households_over_10_a_day_on_2_days_open_one_escalation(h: Harness) -> None:
    """Seed 004: "User creating >10 households per day (multiple days)"."""
    assert _households(h, 11) == []  # one day over: not yet
    assert _households(h, 30, actor="user_1") == []
    h.advance(timedelta(days=1))
    assert _households(h, 6) == []  # second day, not over yet
    h.advance(timedelta(hours=1))
    [ref] = _households(h, 5)  # 11 today: two days over
    h.advance(timedelta(hours=1))
    assert _households(h, 20) == []  # fired today already
    h.advance(timedelta(days=1))
    assert _households(h, 12) == []  # a third day over: the same escalation, fired again
    assert _refs(h) == [ref]

    esc = h.get(ref)
    assert (esc.category, esc.team, esc.priority) == ("suspected_abuse", "trust_safety", "P1")
    created = only(h.timeline(ref, "escalation.created"))
    assert created.data["cause"] == "threshold"
    assert any(
        "households-over-10" in r and "2026-03-09: 11" in r and "2026-03-10: 11" in r
        for r in created.data["reasons"]
    ), created.data["reasons"]
    fired = h.timeline(ref, "trigger.fired")
    assert [(e.at - T0, e.data["trigger"], e.data["refs"]) for e in fired] == [
        (timedelta(days=1, hours=1), "households-over-10", [ref]),
        (timedelta(days=2, hours=2), "households-over-10", [ref]),
    ]
    assert fired[0].data["actor"] == "user_98765"

    h.act(ref, "resolve", by="tess")
    h.advance(timedelta(days=1))
    [again] = _households(h, 11)  # still at it after the case was closed: a new one
    assert again != ref


# ------------------------------------------------------------------ related escalations


def test_related_escalations_become_one_parent_incident(h: Harness) -> None:
    for i in range(5):
        h.create(f"R{i}", subject=f"Cannot login ({i})", description="login fails")
        h.advance(timedelta(minutes=5))
    h.create("X", subject="Outage in EU")  # another category: not related
    with h.store.unit_of_work() as uow:
        incidents = [e for e in uow.escalations.find(limit=100) if e.subject.startswith("Inc")]
    [incident] = incidents
    assert (incident.category, incident.priority) == ("login", "P0")
    children = {ref: h.get(ref).parent_id for ref in ["R0", "R1", "R2", "R3", "R4", "X"]}
    assert children == {
        "R0": incident.id,
        "R1": incident.id,
        "R2": incident.id,
        "R3": incident.id,  # later related escalations join the open incident
        "R4": incident.id,
        "X": None,
    }
    created = only(h.timeline(incident.ref, "escalation.created"))
    assert created.at == T0 + timedelta(minutes=10) and created.data["cause"] == "threshold"
    assert any("related-issues" in r for r in created.data["reasons"])
    fired = [(e.at - T0, e.data["refs"]) for e in h.timeline(incident.ref, "trigger.fired")]
    assert fired == [
        (timedelta(minutes=10), ["R0", "R1", "R2"]),
        (timedelta(minutes=15), ["R3"]),
        (timedelta(minutes=20), ["R4"]),
    ]
    assert h.timeline(incident.ref, "trigger.fired")[0].data["created"] == incident.ref


def test_related_escalations_outside_the_window_do_not_count(h: Harness) -> None:
    for i in range(3):
        h.create(f"R{i}", subject=f"Cannot login ({i})")
        h.advance(timedelta(minutes=40))
    assert [h.get(f"R{i}").parent_id for i in range(3)] == [None, None, None]
    assert len(_refs(h)) == 3


# ------------------------------------------------------------------ management triggers


def test_a_management_trigger_is_recorded_when_the_escalation_is_created(h: Harness) -> None:
    h.create("E1", subject="Refund", description="My lawyer will sue you over this")
    h.create("E2", subject="Refund", description="Please refund me")
    fired = only(h.timeline("E1", "trigger.fired"))
    assert (fired.data["trigger"], fired.data["refs"], fired.at) == ("legal-threat", ["E1"], T0)
    assert h.get("E1").level == "L4"
    reasons = only(h.timeline("E1", "escalation.created")).data["reasons"]
    assert any("legal-threat" in r for r in reasons), reasons
    assert h.timeline("E2", "trigger.fired") == []


# ------------------------------------------------------------------ handling rules

HANDLING = """
id: handling
people: [{id: ana}]
teams:
  - {id: security, contacts: {chat: "#security"}}
  - {id: legal, contacts: {chat: "#legal", email: legal@example.com}}
priorities: [{id: P1}]
handling:
  - {id: security-hold-reply, kind: no_customer_reply, description: Do not confirm a breach}
  - {id: legal-never-in-chat, kind: never_in_chat}
categories:
  - {id: security_incident, owner: security, handling: [security-hold-reply],
     match: {phrases: [breach]}}
  - {id: legal_matter, owner: legal, handling: [legal-never-in-chat], match: {phrases: [lawsuit]}}
  - {id: general, owner: security}
notifications:
  - {id: team-chat, to: {owner: true}, channel: chat, template: internal}
templates:
  - {id: internal, body: "{{ escalation.subject }}"}
  - {id: customer-ack, audience: customer, channel: email, body: "We are on it."}
routing: {default_category: general, default_priority: P1}
"""


def test_no_customer_reply_holds_customer_messages_and_never_in_chat_moves_to_email(
    store: Store,
) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(HANDLING))
    customer = {"email": "mike@example.com"}
    h.create("S1", subject="Possible data breach", customer=customer)
    h.create("L1", subject="Lawsuit threatened", customer=customer)
    h.create("G1", subject="Question", customer=customer)

    # no_customer_reply: the team hears, the customer does not
    assert h.sent("S1", "customer") == []
    assert h.sent("S1", "internal") == [(T0, "chat", "#security")]  # the team's own channel
    held = only(h.timeline("S1", "notification.held"))
    assert (held.data["to"], held.data["audience"], held.data["rule"]) == (
        "mike@example.com",
        "customer",
        "security-hold-reply",
    )
    assert held.reason == "Do not confirm a breach"

    # never_in_chat: the chat message goes to the team's email; the customer still hears
    assert h.sent("L1", "internal") == [(T0, "email", "legal@example.com")]
    assert h.sent("L1", "customer") == [(T0, "email", "mike@example.com")]
    moved = only(h.timeline("L1", "notification.rerouted"))
    assert (moved.data["channel"], moved.data["rule"]) == ("chat", "legal-never-in-chat")

    # no handling: chat to the team, and the customer hears
    assert h.sent("G1", "internal") == [(T0, "chat", "#security")]
    assert h.sent("G1", "customer") == [(T0, "email", "mike@example.com")]
    assert h.timeline("G1", "notification.held") == []
