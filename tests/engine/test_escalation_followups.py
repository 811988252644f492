"""Follow-ups (seed 001): a daily status check always comes; "follow up if no progress in
48 hours" (``if_idle``) comes only after 48 h in which nobody acted (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from escalation_harness import Harness, policy

from escalade.store import Store

FOLLOWUPS = """
id: followups
teams: [{id: support, contacts: {email: support@example.com}}]
priorities: [{id: P2}]
categories: [{id: general, owner: support}]
routing: {default_priority: P2, default_category: general}
followups:
  - {id: daily, what: Check status daily, every: 1d, to: {owner: true}}
  - {id: stale, what: Follow up if no progress in 48 hours, every: 48h, if_idle: true,
     to: {owner: true}}
"""
T0 = datetime(2026, 3, 9, 9, tzinfo=UTC)


def _reminders(h: Harness, ref: str) -> list[tuple[int, str]]:
    return [
        (int((e.at - T0) / timedelta(hours=1)), e.data["what"])
        for e in h.timeline(ref, "reminder.due")
    ]


def test_idle_follow_up_waits_for_48_quiet_hours(store: Store) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(FOLLOWUPS))
    h.create("Q", subject="quiet one")
    h.create("B", subject="busy one")
    h.advance(timedelta(hours=30))
    h.act("B", "comment", by="lena", text="still on it")  # progress at 30 h
    h.advance(timedelta(hours=70))  # to 100 h
    stale = "Follow up if no progress in 48 hours"
    assert [t for t, what in _reminders(h, "Q") if what == stale] == [48, 96]
    assert [t for t, what in _reminders(h, "B") if what == stale] == [78]  # 30 h + 48 h
    daily = [t for t, what in _reminders(h, "B") if what == "Check status daily"]
    assert daily == [24, 48, 72, 96]
