"""An ``on: alert`` trigger completes what ``alerts:`` leaves open: the category of the
escalation an alert opens, and a level floor (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from escalation_harness import Harness, policy

from escalade.escalation.triggers import AlertIn, receive_alert
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
    esc = receive_alert(
        h.service, AlertIn(source="am", key="Disk/db1", status="firing", severity="critical")
    )
    assert esc is not None
    assert (esc.category, esc.team, esc.priority) == ("system_outage", "engineering", "SEV-1")
    fired = h.timeline(esc.ref, "trigger.fired")
    assert fired[0].data["trigger"] == "system-alert"
