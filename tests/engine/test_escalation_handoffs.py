"""On-call hand-offs (seed 000 "on-call handoff procedures"; spec/simulate.md
``oncall.handoff``): at each rotation boundary the open escalations of the schedule's teams
pass to the next person; a new policy version takes over the hand-offs (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from escalation_harness import Harness, policy

from escalade.oncall.schedule import Override
from escalade.store import Store

ONCALL = """
id: oncall
people: [{id: ana}, {id: bo}, {id: cy}]
schedules:
  - id: primary
    timezone: Europe/Berlin
    layers: [{kind: daily, start: "2026-03-02T09:00", people: [ana, bo]}]
teams:
  - {id: ops, schedule: primary}
  - {id: sales}
priorities: [{id: P2}]
categories: [{id: outage, owner: ops}, {id: lead, owner: sales}]
routing: {default_priority: P2, default_category: outage}
"""
T0 = datetime(2026, 3, 9, 12, tzinfo=UTC)  # Monday 13:00 in Berlin: day 8 of the rotation, bo's


def _handoffs(h: Harness) -> list[tuple[datetime, str, str, list[str]]]:
    with h.store.unit_of_work() as uow:
        entries = [e for e in uow.timeline.after(0, 10_000) if e.kind == "oncall.handoff"]
    return [(e.at, e.data["from"], e.data["to"], e.data["open"]) for e in entries]


def test_handoffs_carry_the_open_escalations(store: Store) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(ONCALL))
    h.create("A", subject="db down")
    h.create("B", subject="db slow")
    h.create("S", subject="a sales lead", category="lead")  # not the schedule's team
    h.advance(timedelta(hours=21))  # past Tuesday's 09:00 hand-off
    h.act("B", "resolve", reason="fixed")
    h.advance(timedelta(hours=24))  # past Wednesday's
    tuesday_0900 = datetime(2026, 3, 10, 8, tzinfo=UTC)
    assert _handoffs(h) == [
        (tuesday_0900, "bo", "ana", ["A", "B"]),
        (tuesday_0900 + timedelta(days=1), "ana", "bo", ["A"]),
    ]


def test_an_override_changes_who_takes_over(store: Store) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(ONCALL))
    h.create("A", subject="db down")
    tuesday_0900 = datetime(2026, 3, 10, 8, tzinfo=UTC)
    h.service.overrides["primary"] = [
        Override(person="cy", start=tuesday_0900, end=tuesday_0900 + timedelta(hours=4))
    ]
    h.advance(timedelta(hours=21))
    assert _handoffs(h) == [(tuesday_0900, "bo", "cy", ["A"])]


def test_a_new_policy_version_takes_over_the_handoffs(store: Store) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(ONCALL))
    h.apply(policy(ONCALL.replace("people: [ana, bo]", "people: [ana, cy]")))
    h.advance(timedelta(hours=21))
    tuesday_0900 = datetime(2026, 3, 10, 8, tzinfo=UTC)
    assert _handoffs(h) == [(tuesday_0900, "cy", "ana", [])]  # once, by the new version
