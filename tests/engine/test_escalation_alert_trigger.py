"""An ``on: alert`` trigger completes what ``alerts:`` leaves open: the category of the
escalation an alert opens, and a level floor (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from escalation_harness import Harness, policy

from escalade.service import AlertIn
from escalade.store import Store

ALERTS = """
id: alert-trigger
levels: [{id: L1, team: support}, {id: L3, team: engineering}]
teams: [{id: support, level: L1}, {id: engineering, level: L3}]
priorities: [{id: SEV-1}, {id: SEV-2}]
categories:
  - {id: general, owner: support}
  - {id: system_outage, owner: engineering}
alerts: {severity: {critical: SEV-1}}
routing: {default_priority: SEV-2, default_category: general}
triggers:
  - id: system-alert
    kind: automatic
    "on": alert
    then: {category: system_outage}
"""


def test_alert_trigger_sets_the_category(store: Store) -> None:
    h = Harness.start(store, datetime(2026, 3, 9, 12, tzinfo=UTC))
    h.apply(policy(ALERTS))
    esc = h.service.receive_alert(
        AlertIn(source="am", key="Disk/db1", status="firing", severity="critical")
    )
    assert esc is not None
    assert (esc.category, esc.team, esc.priority) == ("system_outage", "engineering", "SEV-1")
    fired = h.timeline(esc.ref, "trigger.fired")
    assert fired[0].data["trigger"] == "system-alert"


THRESHOLD_TEAM = """
id: threshold-team
teams: [{id: support}, {id: trust_safety}]
priorities: [{id: P1}, {id: P2}]
categories: [{id: general, owner: support}]
routing: {default_priority: P2, default_category: general}
triggers:
  - id: bulk-removals
    kind: threshold
    threshold: {activity: member.removed, more_than: 2, window: 1d}
    then: {team: trust_safety, min_priority: P1}
"""


def test_threshold_trigger_hands_what_it_opens_to_its_team(store: Store) -> None:

    h = Harness.start(store, datetime(2026, 3, 9, 12, tzinfo=UTC))
    h.apply(policy(THRESHOLD_TEAM))
    assert h.service.record_activity(actor="u9", action="member.removed", count=2) == []
    [opened] = h.service.record_activity(actor="u9", action="member.removed")
    esc = h.get(opened.ref)
    assert (esc.team, esc.priority) == ("trust_safety", "P1")
    assert h.timeline(opened.ref, "escalation.reassigned")[0].data["to"] == "trust_safety"
