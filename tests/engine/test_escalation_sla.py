"""SLA clocks through the service and the engine, on a business calendar (9-18 New York),
on real SQLite and PostgreSQL: warning and breach in business time, escalation on breach,
acknowledgement stopping the clocks, waiting on the customer pausing the resolution clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from escalation_harness import Harness, only, policy

from escalade.service import ActionRefused
from escalade.store import Store

ET = ZoneInfo("America/New_York")

SLA = """
id: sla-business-hours
calendars:
  - {id: ny-business, timezone: America/New_York, hours: mon-fri 09:00-18:00}
levels:
  - {id: L1, team: support}
  - {id: L2, team: tier2}
  - {id: L3, team: engineering}
roles: [{id: support_manager}]
people:
  - {id: maria, roles: [support_manager]}
  - {id: ana}
teams:
  - {id: support, level: L1, calendar: ny-business, manager: support_manager, members: [ana]}
  - {id: tier2, level: L2, calendar: ny-business}
  - {id: engineering, level: L3}
priorities:
  - {id: P1, response: 2h, acknowledgement: 3h, resolution: 6h}
  - {id: P2, response: 2h, acknowledgement: 3h, resolution: 6h}
sla:
  warn_at: 0.8
  on_breach: [escalate, notify_manager, raise_priority]
categories:
  - {id: billing, owner: support, path: [tier2, engineering], match: {phrases: [invoice]}}
routing: {default_priority: P2, default_category: billing}
"""

FRIDAY_1730 = datetime(2026, 3, 6, 17, 30, tzinfo=ET)  # EST; Monday 9 March is EDT already
MONDAY_0900 = datetime(2026, 3, 9, 9, 0, tzinfo=ET)


def _et(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ET)


@pytest.fixture
def friday(store: Store) -> Harness:
    h = Harness.start(store, FRIDAY_1730)
    h.apply(policy(SLA))
    return h


def _clock_events(h: Harness, ref: str, clock: str) -> list[tuple[str, datetime]]:
    return [
        (e.kind, e.at.astimezone(ET))
        for e in h.timeline(ref, "sla.warning", "sla.breached")
        if e.data["clock"] == clock
    ]


def test_a_2h_response_target_opened_friday_evening_warns_and_breaches_monday(
    friday: Harness,
) -> None:
    h = friday
    h.create("E1", subject="Invoice charged twice")
    h.advance_to(_et(9, 8, 59))  # the whole weekend: nothing, clocks only run 9-18
    assert h.timeline("E1", "sla.warning", "sla.breached") == []

    h.advance_to(_et(9, 10, 45))  # before the acknowledgement clock's warning (10:54)
    # 30 min on Friday + 1h30 on Monday; warning at 80 % = 1h36 → 30 min + 1h06
    assert _clock_events(h, "E1", "response") == [
        ("sla.warning", _et(9, 10, 6)),
        ("sla.breached", _et(9, 10, 30)),
    ]
    breach = h.timeline("E1", "sla.breached")[0]
    assert breach.data["due"] == "2026-03-09T14:30:00Z" and breach.data["source"] == "priority P2"

    escalated = only(h.timeline("E1", "escalation.escalated"))
    assert escalated.at.astimezone(ET) == _et(9, 10, 30)
    assert (escalated.data["cause"], escalated.data["team"], escalated.data["to_level"]) == (
        "no_ack",
        "tier2",
        "L2",
    )
    assert "path step 1" in escalated.data["via"]
    assert escalated.reason == "response SLA breached"

    raised = only(h.timeline("E1", "escalation.priority_raised"))
    assert (raised.data["from"], raised.data["to"]) == ("P2", "P1")
    assert h.get("E1").priority == "P1"

    at_breach = [(to, ch) for at, ch, to in h.sent("E1") if at.astimezone(ET) == _et(9, 10, 30)]
    # the new owner, and the manager of the team that missed the target
    assert sorted(at_breach) == [("maria", "email"), ("team:tier2", "email")]


def test_acknowledging_stops_the_response_and_acknowledgement_clocks(friday: Harness) -> None:
    h = friday
    h.create("E1", subject="Invoice charged twice")
    h.create("E2", subject="Invoice charged twice")
    h.advance_to(_et(9, 9, 20))
    h.act("E1", "acknowledge", by="ana")
    h.advance_to(_et(10, 18, 0))

    assert _clock_events(h, "E1", "response") == []
    assert _clock_events(h, "E1", "acknowledgement") == []
    assert [k for k, _ in _clock_events(h, "E1", "resolution")] == ["sla.warning", "sla.breached"]
    # the one nobody acknowledged ran every clock out, escalating on the way
    assert _clock_events(h, "E2", "acknowledgement") == [
        ("sla.warning", _et(9, 10, 54)),  # 80 % of 3h = 2h24 → 30m Friday + 1h54 Monday
        ("sla.breached", _et(9, 11, 30)),
    ]
    assert [e.data["cause"] for e in h.timeline("E2", "escalation.escalated")] == [
        "no_ack",  # response, to tier2
        "no_ack",  # acknowledgement, to engineering
    ]
    # the resolution breach finds it at the top of its path and levels: said, not raised
    top = only(h.timeline("E2", "escalation.at_top"))
    assert top.data["cause"] == "sla_breach" and "already at the top" in top.data["note"]


def test_waiting_on_the_customer_pauses_the_resolution_clock(store: Store) -> None:
    h = Harness.start(store, MONDAY_0900)
    h.apply(policy(SLA))
    h.create("E1", subject="Invoice charged twice", priority="P1")
    h.create("E2", subject="Invoice charged twice", priority="P1")  # never paused
    h.advance_to(_et(9, 9, 30))
    h.act("E1", "acknowledge", by="ana")
    h.act("E2", "acknowledge", by="ana")
    h.advance_to(_et(9, 10, 0))
    h.act("E1", "waiting_on_customer", by="ana", reason="asked for the card statement")
    paused = only(h.timeline("E1", "sla.paused"))
    assert (paused.data["clock"], paused.actor, paused.reason) == (
        "resolution",
        "ana",
        "asked for the card statement",
    )

    h.advance_to(_et(10, 9, 0))  # paused: the 6h resolution target passes unnoticed
    assert _clock_events(h, "E1", "resolution") == []
    assert _clock_events(h, "E2", "resolution") == [
        ("sla.warning", _et(9, 13, 48)),
        ("sla.breached", _et(9, 15, 0)),
    ]

    h.act("E1", "customer_reply", by="customer", text="statement attached")
    resumed = only(h.timeline("E1", "sla.resumed"))
    assert resumed.at.astimezone(ET) == _et(10, 9, 0)
    h.advance_to(_et(11, 18, 0))
    # 1h ran before the pause; the paused 23h (8 business hours) do not count:
    # warning at 4h48 of running time → 3h48 after the reply; breach 5h after it
    assert _clock_events(h, "E1", "resolution") == [
        ("sla.warning", _et(10, 12, 48)),
        ("sla.breached", _et(10, 14, 0)),
    ]
    breach = h.timeline("E1", "sla.breached")[0]
    assert breach.data["due"] == "2026-03-10T18:00:00Z"
    escalated = only(h.timeline("E1", "escalation.escalated"))
    assert (escalated.data["cause"], escalated.at.astimezone(ET)) == ("sla_breach", _et(10, 14))


def test_paused_time_is_left_out_over_several_pauses_and_a_warning_is_not_repeated(
    store: Store,
) -> None:
    h = Harness.start(store, MONDAY_0900)
    h.apply(policy(SLA))
    h.create("E1", subject="Invoice charged twice", priority="P1")
    h.create("E2", subject="Invoice charged twice", priority="P1")
    h.act("E1", "acknowledge", by="ana")
    h.act("E2", "acknowledge", by="ana")
    h.advance_to(_et(9, 13, 0))
    h.act("E1", "waiting_on_customer", by="ana")  # E1 ran 4h: before its 4h48 warning
    h.advance_to(_et(9, 14, 0))
    h.act("E2", "waiting_on_customer", by="ana")  # E2 ran 5h: warned at 13:48 already
    h.advance_to(_et(9, 15, 0))
    h.act("E1", "customer_reply", by="customer")
    h.advance_to(_et(9, 15, 30))
    h.act("E1", "waiting_on_customer", by="ana")  # 4h30 run, still before the warning
    with pytest.raises(ActionRefused, match="already waiting on the customer"):
        h.act("E1", "waiting_on_customer", by="ana")
    h.advance_to(_et(10, 9, 0))
    h.act("E1", "customer_reply", by="customer")
    h.act("E2", "customer_reply", by="customer")
    h.advance_to(_et(10, 18, 0))
    assert _clock_events(h, "E1", "resolution") == [
        ("sla.warning", _et(10, 9, 18)),  # 18 min left to 4h48
        ("sla.breached", _et(10, 10, 30)),  # 1h30 left to 6h
    ]
    assert _clock_events(h, "E2", "resolution") == [
        ("sla.warning", _et(9, 13, 48)),
        ("sla.breached", _et(10, 10, 0)),
    ]
    assert len(h.timeline("E1", "sla.resumed")) == 2
