"""The escalation service and the engine together, on real SQLite and PostgreSQL: the
lifecycle through the service (timeline, refusals, clocks) and policy versions with their
snapshots. Driven as ``simulate`` drives them: a virtual clock, each timer at its due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from escalation_harness import Harness, only, policy

from escalade.service import ActionRefused, NotFound
from escalade.store import Store, TimerState

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # a Monday

LIFECYCLE = """
id: lifecycle
levels:
  - {id: L1, team: frontline, response: 4h}
  - {id: L2, team: specialists, response: 2h}
  - {id: L3, team: engineering, response: 1h}
  - {id: L4, team: management, response: 30m}
roles: [{id: cfo, name: CFO}]
people:
  - {id: lena}
  - {id: omar}
  - {id: victor, roles: [cfo]}
teams:
  - {id: frontline, level: L1, members: [lena]}
  - {id: specialists, level: L2}
  - {id: engineering, level: L3, members: [{person: omar, role: lead}]}
  - {id: management, level: L4}
  - {id: billing, level: L2}
  - {id: finance, level: L3}
priorities:
  - {id: P1, resolution: 8h, updates: {customer: 2h}, postmortem: {required: true, due: 48h}}
  - {id: P2, resolution: 3d}
categories:
  - id: billing_issue
    owner: frontline
    path: [billing, finance, {role: cfo}]
    match: {phrases: [invoice]}
  - {id: general, level: L1}
routing: {default_priority: P2, default_category: general}
"""


@pytest.fixture
def h(store: Store) -> Harness:
    harness = Harness.start(store, T0)
    harness.apply(policy(LIFECYCLE))
    return harness


def _invoice(h: Harness, ref: str = "E1", **kw: object) -> None:
    h.create(ref, subject="Charged twice", description="The invoice shows two charges", **kw)


# ------------------------------------------------------------------ create


def test_create_records_the_decision_with_its_reasons_and_notifies_the_team(h: Harness) -> None:
    _invoice(h)
    created = only(h.timeline("E1", "escalation.created"))
    assert created.at == T0 and created.actor == "tests"
    assert {k: created.data[k] for k in ("team", "level", "priority", "category")} == {
        "team": "frontline",
        "level": "L1",
        "priority": "P2",
        "category": "billing_issue",
    }
    reasons = created.data["reasons"]
    assert any("billing_issue" in r and "invoice" in r for r in reasons), reasons
    assert any("default priority 'P2'" in r for r in reasons), reasons
    assert created.data["policy_version"] == h.service.active.version_id  # type: ignore[union-attr]
    assert h.sent("E1") == [(T0, "email", "lena")]  # a team without a shared address: its people
    esc = h.get("E1")
    assert (esc.state, esc.team, esc.level, esc.priority) == ("open", "frontline", "L1", "P2")


def test_a_ref_is_used_once(h: Harness) -> None:
    _invoice(h)
    with pytest.raises(ActionRefused, match="'E1' already exists"):
        _invoice(h)


# ------------------------------------------------------------------ escalate


def test_escalate_climbs_the_category_path_then_the_levels_and_stops_at_the_top(
    h: Harness,
) -> None:
    _invoice(h)
    h.act("E1", "acknowledge", by="lena")  # the acknowledger owns it: still on its path
    h.act("E1", "escalate", by="lena", reason="customer_request")
    h.act("E1", "escalate", by="lena")
    h.act("E1", "escalate", by="lena", reason="needs sign-off")
    h.act("E1", "escalate", by="lena")
    with pytest.raises(ActionRefused, match="already at the top") as refused:
        h.act("E1", "escalate", by="lena")
    assert "'management'" in str(refused.value) and "'L4'" in str(refused.value)

    moves = [
        (e.actor, e.data["cause"], e.data["team"], e.data["from_level"], e.data["to_level"])
        for e in h.timeline("E1", "escalation.escalated")
    ]
    assert moves == [
        ("lena", "customer_request", "billing", "L1", "L2"),
        ("lena", "manual", "finance", "L2", "L3"),
        ("lena", "manual", "finance", "L3", "L3"),
        ("lena", "manual", "management", "L3", "L4"),
    ]
    steps = h.timeline("E1", "escalation.escalated")
    assert "path step 1" in steps[0].data["via"] and steps[0].reason == "customer_request"
    assert steps[2].data["owner"] == "finance:cfo" and steps[2].reason == "needs sign-off"
    assert "level L4" in steps[3].data["via"]
    # each new owner hears about it; the path step naming the CFO reaches the CFO
    assert [to for _, _, to in h.sent("E1")] == [
        "lena",  # frontline has no shared address: its member
        "team:billing",
        "team:finance",
        "victor",
        "team:management",
    ]
    assert (h.get("E1").team, h.get("E1").level, h.get("E1").state) == (
        "management",
        "L4",
        "acknowledged",
    )


def test_escalate_to_a_named_level_and_not_below(h: Harness) -> None:
    _invoice(h)
    h.act("E1", "escalate", to="L3")
    assert (h.get("E1").team, h.get("E1").level) == ("engineering", "L3")
    with pytest.raises(ActionRefused, match="'L2' is not above the current level 'L3'"):
        h.act("E1", "escalate", to="L2")
    with pytest.raises(ActionRefused, match="neither a level nor a team"):
        h.act("E1", "escalate", to="mars")


# ------------------------------------------------------------------ deescalate, reassign


def test_deescalate_to_the_previous_rung_or_to_a_named_level(h: Harness) -> None:
    _invoice(h)
    h.act("E1", "escalate")
    h.act("E1", "escalate")
    h.act("E1", "deescalate", by="omar", reason="finance not needed yet")
    assert (h.get("E1").team, h.get("E1").level) == ("billing", "L2")
    h.act("E1", "escalate")
    h.act("E1", "deescalate", by="omar", to="L1")
    assert (h.get("E1").team, h.get("E1").level) == ("frontline", "L1")
    with pytest.raises(ActionRefused, match="already at the bottom"):
        h.act("E1", "deescalate")
    with pytest.raises(ActionRefused, match="'L3' is not below the current level 'L1'"):
        h.act("E1", "deescalate", to="L3")
    moves = [
        (e.actor, e.data["from_level"], e.data["to_level"], e.data["team"], e.reason)
        for e in h.timeline("E1", "escalation.deescalated")
    ]
    assert moves == [
        ("omar", "L3", "L2", "billing", "finance not needed yet"),
        ("omar", "L3", "L1", "frontline", None),
    ]


def test_reassign_to_a_team_or_a_person_records_the_handoff(h: Harness) -> None:
    _invoice(h)
    h.act("E1", "reassign", by="lena", to="engineering", reason="it is a bug")
    h.act("E1", "reassign", by="omar", to="omar")
    assert (h.get("E1").team, h.get("E1").owner) == ("engineering", "omar")
    assert h.get("E1").level == "L3"  # the team's level comes with a hand-off across tiers
    handoffs = [(e.actor, e.data, e.reason) for e in h.timeline("E1", "escalation.reassigned")]
    assert handoffs == [
        (
            "lena",
            {
                "from": "frontline",
                "to": "engineering",
                "by": "lena",
                "handoff": True,
                "from_level": "L1",
                "to_level": "L3",
            },
            "it is a bug",
        ),
        ("omar", {"from": "engineering", "to": "omar", "by": "omar", "handoff": True}, None),
    ]
    # whoever it was handed to hears of it: engineering (its lead, it has no shared address),
    # then omar himself
    assert [to for _, _, to in h.sent("E1")] == ["lena", "omar", "omar"]
    handed = [
        e.data for e in h.timeline("E1", "notification.sent") if e.data.get("cause") == "reassigned"
    ]
    assert [(d["to"], d["via"]) for d in handed] == [
        ("omar", "team:engineering member"),
        ("omar", "assigned to omar"),
    ]
    with pytest.raises(ActionRefused, match="'nobody' is neither a team nor a person"):
        h.act("E1", "reassign", to="nobody")
    with pytest.raises(ActionRefused, match="needs 'to'"):
        h.act("E1", "reassign")


# ------------------------------------------------------------------ resolve, reopen, close


def _pending(h: Harness, ref: str) -> list[str]:
    with h.store.unit_of_work() as uow:
        return [t.key for t in uow.timers.find(escalation_id=h.get(ref).id)]


def test_resolve_cancels_timers_and_requires_a_postmortem_when_the_priority_does(
    h: Harness,
) -> None:
    _invoice(h, "E1", priority="P1")
    _invoice(h, "E2")  # P2: no post-mortem
    assert _pending(h, "E1")
    h.advance(timedelta(hours=1))
    h.act("E1", "resolve", by="omar", reason="refunded the double charge")
    h.act("E2", "resolve", by="omar")
    assert _pending(h, "E1") == []
    with h.store.unit_of_work() as uow:
        states = {t.state for t in uow.timers.find(escalation_id=h.get("E1").id, states=None)}
    assert states == {TimerState.cancelled}

    resolved = only(h.timeline("E1", "escalation.resolved"))
    assert (resolved.actor, resolved.at, resolved.data["resolution"]) == (
        "omar",
        T0 + timedelta(hours=1),
        "refunded the double charge",
    )
    postmortem = only(h.timeline("E1", "postmortem.required"))
    assert postmortem.data["due"] == "2026-03-11T11:00:00Z"  # 48h after resolution
    assert h.timeline("E2", "postmortem.required") == []

    h.advance(timedelta(days=5))  # cancelled clocks never fire
    assert h.timeline("E1", "sla.warning", "sla.breached") == []


def test_reopen_re_arms_the_clocks_and_close_ends_it(h: Harness) -> None:
    _invoice(h)
    h.act("E1", "acknowledge", by="lena")
    h.advance(timedelta(hours=1))
    h.act("E1", "resolve", by="lena")
    h.advance(timedelta(hours=1))
    reopened_at = h.now
    h.act("E1", "reopen", by="lena", reason="customer says it happened again")
    esc = h.get("E1")
    assert (esc.state, esc.acknowledged_at, esc.resolved_at) == ("open", None, None)
    assert _pending(h, "E1"), "reopening must start the clocks again"

    # the response clock (4h at L1) runs again from the reopening, not from the creation
    h.advance(timedelta(hours=5))
    breach = only(h.timeline("E1", "sla.breached"))
    assert (breach.data["clock"], breach.at) == ("response", reopened_at + timedelta(hours=4))
    warning = only(h.timeline("E1", "sla.warning"))
    assert warning.at == reopened_at + timedelta(hours=3, minutes=12)  # 80 % of 4h

    h.act("E1", "resolve", by="lena")
    h.act("E1", "close", by="lena")
    assert h.get("E1").state == "closed" and h.get("E1").closed_at == h.now
    h.act("E1", "reopen", by="lena")  # a closed escalation can come back too
    assert h.get("E1").state == "open"
    assert [e.kind for e in h.timeline("E1", "escalation.reopened")] == ["escalation.reopened"] * 2


def test_reopen_re_arms_the_update_reminders_too(h: Harness) -> None:
    _invoice(h, "E1", priority="P1")  # P1: a customer update every 2h
    h.advance(timedelta(hours=3))
    h.act("E1", "resolve", by="lena")
    h.advance(timedelta(hours=2))
    h.act("E1", "reopen", by="lena")
    h.advance(timedelta(hours=4, minutes=30))
    reminders = [(e.at - T0, e.data["what"]) for e in h.timeline("E1", "reminder.due")]
    assert reminders == [
        (timedelta(hours=2), "customer update"),
        (timedelta(hours=7), "customer update"),  # 2h after reopening at 5h
        (timedelta(hours=9), "customer update"),
    ]


REFUSED = [
    ([], "close", "resolve it first"),
    (["acknowledge"], "acknowledge", "already acknowledged"),
    (["investigate"], "investigate", "already being investigated"),
    (["resolve"], "resolve", "already resolved"),
    (["resolve"], "escalate", "reopen it first"),
    (["resolve"], "reassign", "reopen it first"),
    ([], "reopen", "not resolved or closed"),
    (["resolve", "close"], "close", "already closed"),
]


def test_invalid_transitions_are_refused_with_the_reason(h: Harness) -> None:
    for n, (steps, action, why) in enumerate(REFUSED):
        ref = f"E{n}"
        _invoice(h, ref)
        for step in steps:
            h.act(ref, step, by="lena")
        before = h.timeline(ref)
        state = h.get(ref).state
        with pytest.raises(ActionRefused, match=why) as refused:
            h.act(ref, action, by="omar", to="engineering")
        assert f"cannot {action} an escalation that is {state}" in str(refused.value)
        assert h.timeline(ref) == before and h.get(ref).state == state  # nothing happened


def test_an_unknown_ref_is_not_found(h: Harness) -> None:
    with pytest.raises(NotFound, match="no escalation 'E404'"):
        h.act("E404", "acknowledge")


def test_the_timeline_is_append_only_and_says_who_what_when_why(h: Harness) -> None:
    _invoice(h, "E1", priority="P1")
    seen = h.timeline("E1")
    script = [
        (timedelta(minutes=5), "acknowledge", "lena", {}),
        (timedelta(minutes=10), "investigate", "lena", {}),
        (timedelta(minutes=15), "comment", "lena", {"text": "checking the ledger"}),
        (timedelta(minutes=20), "escalate", "lena", {"reason": "customer_request"}),
        (timedelta(minutes=30), "reassign", "omar", {"to": "omar"}),
        (timedelta(minutes=40), "resolve", "omar", {"reason": "refunded"}),
        (timedelta(minutes=50), "close", "omar", {}),
    ]
    for at, action, by, kw in script:
        h.advance_to(T0 + at)
        h.act("E1", action, by=by, **kw)
        now = h.timeline("E1")
        assert now[: len(seen)] == seen, f"{action} changed earlier entries"
        assert len(now) > len(seen), f"{action} left no trace"
        seen = now
    people = [(e.at - T0, e.actor, e.kind) for e in seen if e.actor != "escalade"]
    assert people == [
        (timedelta(0), "tests", "escalation.created"),
        (timedelta(minutes=5), "lena", "escalation.acknowledged"),
        (timedelta(minutes=10), "lena", "escalation.investigating"),
        (timedelta(minutes=15), "lena", "escalation.comment"),
        (timedelta(minutes=20), "lena", "escalation.escalated"),
        (timedelta(minutes=30), "omar", "escalation.reassigned"),
        (timedelta(minutes=40), "omar", "escalation.resolved"),
        (timedelta(minutes=50), "omar", "escalation.closed"),
    ]
    assert [e.id for e in seen] == sorted(e.id for e in seen)
    assert [e.at for e in seen] == sorted(e.at for e in seen)
    assert only(e for e in seen if e.kind == "escalation.comment").data["text"] == (
        "checking the ledger"
    )
    assert only(e for e in seen if e.kind == "escalation.escalated").reason == "customer_request"


# ------------------------------------------------------------------ policy versions


def _versioned(ladder_after: str, notify: str, response: str, comment: str = "") -> str:
    return f"""
id: versions{comment}
people: [{{id: ana}}, {{id: bo}}]
teams: [{{id: support}}]
priorities:
  - {{id: P1, ladder: page, response: {response}}}
ladders:
  - id: page
    steps: [{{after: {ladder_after}, notify: [{{person: {notify}}}], unless: [resolved]}}]
categories: [{{id: general, owner: support}}]
routing: {{default_category: general, default_priority: P1}}
"""


def test_escalations_keep_the_policy_version_they_started_with(store: Store) -> None:
    h = Harness.start(store, T0)
    v1 = h.apply(policy(_versioned("10m", "ana", "1h")))
    assert h.apply(policy(_versioned("10m", "ana", "1h"))) == v1  # same content, same version
    h.create("E1", subject="first")
    v2 = h.apply(policy(_versioned("20m", "bo", "2h")))
    assert v2 != v1
    h.create("E2", subject="second")
    assert (h.get("E1").policy_version_id, h.get("E2").policy_version_id) == (v1, v2)

    # as after a restart: a new service knows only the current policy, v2
    h = Harness.start(store, h.now)
    assert h.apply(policy(_versioned("20m", "bo", "2h"))) == v2
    h.advance(timedelta(hours=3))

    assert h.minutes_sent("E1", T0)[1:] == [(10, "ana")]
    assert h.minutes_sent("E2", T0)[1:] == [(20, "bo")]
    breaches = {
        ref: [(e.data["clock"], e.at - T0) for e in h.timeline(ref, "sla.breached")]
        for ref in ("E1", "E2")
    }
    assert breaches == {
        "E1": [("response", timedelta(hours=1))],
        "E2": [("response", timedelta(hours=2))],
    }
    with store.unit_of_work() as uow:
        assert [p.id for p in uow.policies.history()] == [v1, v2]
