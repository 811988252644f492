"""The ``recategorise`` action (issue 17): a person corrects the category. The category
changes; the owning team follows it only while the escalation is still with the old
category's team and nobody reassigned it; the priority rises to the new category's
default when that is more urgent and is never lowered; ``escalation.recategorised``
records what changed (docs/engine.md "Re-categorising")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from escalation_harness import Harness, only, policy

from escalade.service import ActionRefused
from escalade.store import Store

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # a Monday

POLICY = """
id: recat
levels:
  - {id: L1, team: frontline, response: 4h}
  - {id: L2, team: billing, response: 2h}
  - {id: L3, team: security, response: 1h}
people: [{id: lena}, {id: omar}]
teams:
  - {id: frontline, level: L1, members: [lena]}
  - {id: billing, level: L2}
  - {id: security, level: L3}
  - {id: engineering, level: L3}
priorities:
  - {id: P1, resolution: 8h}
  - {id: P2, resolution: 3d}
  - {id: P3, resolution: 5d}
categories:
  - {id: billing_issue, owner: billing, match: {phrases: [invoice]}}
  - {id: account_takeover, owner: security, priority: P1}
  - {id: how_to, owner: frontline, priority: P3}
  - {id: general, level: L1}
routing: {default_priority: P2, default_category: general}
"""


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness.start(store, T0)
    harness.apply(policy(POLICY))
    return harness


def _invoice(h: Harness, ref: str = "E1") -> None:
    h.create(ref, subject="Strange invoice", description="An invoice I never asked for")


def test_the_team_and_a_more_urgent_priority_follow_the_new_category(h: Harness) -> None:
    _invoice(h)
    esc = h.get("E1")
    assert (esc.category, esc.team, esc.level, esc.priority) == (
        "billing_issue", "billing", "L2", "P2",
    )  # fmt: skip
    h.act("E1", "recategorise", by="lena", category="account_takeover", reason="not billing")
    esc = h.get("E1")
    assert (esc.category, esc.team, esc.level, esc.priority, esc.owner) == (
        "account_takeover", "security", "L3", "P1", None,
    )  # fmt: skip
    entry = only(h.timeline("E1", "escalation.recategorised"))
    assert entry.actor == "lena" and entry.reason == "not billing"
    assert entry.data == {
        "from": "billing_issue",
        "to": "account_takeover",
        "by": "lena",
        "from_team": "billing",
        "to_team": "security",
        "from_level": "L2",
        "to_level": "L3",
        "from_priority": "P2",
        "to_priority": "P1",
    }
    # the team it moved to hears of it (security has no address or people: by its name)
    told = [e.data for e in h.timeline("E1", "notification.sent")]
    assert [(d["to"], d.get("cause")) for d in told][-1] == ("team:security", "recategorised")


def test_the_priority_is_never_lowered(h: Harness) -> None:
    _invoice(h)
    h.act("E1", "recategorise", category="how_to")
    esc = h.get("E1")
    assert (esc.category, esc.team, esc.priority) == ("how_to", "frontline", "P2")
    assert "to_priority" not in only(h.timeline("E1", "escalation.recategorised")).data


def test_a_reassigned_escalation_stays_where_people_put_it(h: Harness) -> None:
    _invoice(h)
    h.act("E1", "reassign", to="engineering")
    h.act("E1", "recategorise", category="account_takeover")
    esc = h.get("E1")
    assert (esc.category, esc.team, esc.priority) == ("account_takeover", "engineering", "P1")
    assert "to_team" not in only(h.timeline("E1", "escalation.recategorised")).data


def test_a_resolved_escalation_is_relabelled_and_nothing_else_moves(h: Harness) -> None:
    _invoice(h)
    h.act("E1", "resolve", reason="refunded")
    h.act("E1", "recategorise", category="account_takeover")
    esc = h.get("E1")
    assert (esc.state, esc.category, esc.team, esc.priority) == (
        "resolved", "account_takeover", "billing", "P2",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("category", "why"),
    [
        (None, "recategorise needs 'category'"),
        ("refunds", "'refunds' is not a category of policy 'recat' (billing_issue, "),
        ("billing_issue", "it is already in category 'billing_issue'"),
    ],
)
def test_refused_with_the_reason(h: Harness, category: str | None, why: str) -> None:
    _invoice(h)
    with pytest.raises(ActionRefused, match=why.replace("(", r"\(")):
        h.act("E1", "recategorise", category=category)
    assert h.get("E1").category == "billing_issue"
    assert h.timeline("E1", "escalation.recategorised") == []


def test_an_escalation_without_a_priority_takes_the_new_categorys(store: Store) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(POLICY.replace("routing: {default_priority: P2, ", "routing: {")))
    _invoice(h)
    assert h.get("E1").priority is None
    h.act("E1", "recategorise", category="account_takeover")
    assert h.get("E1").priority == "P1"
    data = only(h.timeline("E1", "escalation.recategorised")).data
    assert (data["from_priority"], data["to_priority"]) == (None, "P1")
