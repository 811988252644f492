"""Issue 16 classes 5, 8, 9 and 10 as engine rules (the clocks, monitoring and ceiling on
every store; the rest on the memory store):

- class 5: a team's or level's response target starts when the escalation *reaches* it
  (escalation, reassignment, trigger, ladder step), not only at creation (seed 002: Tier 3
  15 min for P0/P1, Tier 4 1 h in an emergency);
- class 8: the customer replying while the escalation waits on them, and a reply whose
  mood dropped, fire the policy's ``on: customer_reply`` / ``on: dissatisfaction``
  triggers (seed 001, Step 8 "Set Monitoring");
- class 10: a breach never moves an escalation above its category's
  ``auto_escalate_up_to`` (seed 000: Timeout → Auto Escalate → Timeout → Management
  Alert); ``related: customer_category`` links one customer's tickets only when they are
  about the same thing; the on-call hand-off lists every open escalation the person coming
  on is responsible for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from escalation_harness import Harness, only, policy

from escalade.store import Store
from escalade.store.memory import MemoryStore

T0 = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # a Monday

TIERS = """
id: tiers
levels:
  - {id: T1, team: tier1}
  - {id: T2, team: tier2, response: 30m}
  - {id: T3, team: tier3}
  - {id: T4, team: tier4}
teams:
  - {id: tier1, level: T1, contacts: {email: t1@example.com}}
  - {id: tier2, level: T2, contacts: {email: t2@example.com}}
  - {id: billing, contacts: {email: billing@example.com}}
  - {id: tier3, level: T3, contacts: {email: t3@example.com}}
  - {id: tier4, level: T4, contacts: {email: t4@example.com}}
priorities:
  - {id: P0, ladder: p0}
  - {id: P1}
  - {id: P2}
sla:
  on_breach: [escalate]
  rows:
    - {team: tier3, priority: P0, response: 15m}
    - {team: tier3, priority: P1, response: 15m}
    - {team: tier4, priority: P0, response: 1h}
    - {team: tier4, priority: P1, response: 1h}
ladders:
  - id: p0
    steps:
      - {after: 0m, notify: [{team: tier3}], level: T3, unless: []}
categories:
  - {id: payments, owner: tier1, path: [billing, tier3]}
  - {id: outage, owner: tier1}
routing: {default_priority: P2, default_category: outage}
"""


@pytest.fixture
def h(store: Store) -> Harness:
    h = Harness.start(store, T0)
    h.apply(policy(TIERS))
    return h


def _level_clocks(h: Harness, ref: str) -> list[tuple[int, str, str, str | None]]:
    return [
        (
            int((e.at - T0) / timedelta(minutes=1)),
            e.kind,
            e.data["source"],
            e.data.get("team"),
        )
        for e in h.timeline(ref, "sla.warning", "sla.breached")
        if e.data["clock"] == "level response"
    ]


# ----------------------------------------------------------------------------- class 5


def test_tier3_response_starts_when_an_escalation_reaches_it(h: Harness) -> None:
    h.create("PAY", subject="card payments failing", category="payments", priority="P1")
    h.act("PAY", "acknowledge", by="rita")
    h.advance(timedelta(minutes=10))
    h.act("PAY", "escalate", by="rita")  # → billing: no target of its own
    h.act("PAY", "escalate", by="rita")  # → tier3 at 14:10: 15 min for P1
    assert h.get("PAY").team == "tier3"
    h.advance(timedelta(minutes=14))
    assert h.get("PAY").team == "tier3"
    h.advance(timedelta(minutes=2))
    assert _level_clocks(h, "PAY")[-1] == (25, "sla.breached", "sla row tier3×P1 response", "tier3")
    assert h.get("PAY").team == "tier4"  # nobody answered: on to Tier 4, whose hour starts
    assert h.timeline("PAY", "escalation.escalated")[-1].data["cause"] == "no_ack"
    h.advance(timedelta(minutes=61))
    assert _level_clocks(h, "PAY")[-1] == (85, "sla.breached", "sla row tier4×P1 response", "tier4")


def test_an_answer_after_arrival_stops_the_new_teams_clock(h: Harness) -> None:
    h.create("PAY", subject="card payments failing", category="payments", priority="P1")
    h.act("PAY", "escalate", by="rita")
    h.act("PAY", "escalate", by="rita")
    h.advance(timedelta(minutes=5))
    h.act("PAY", "acknowledge", by="eli")
    h.advance(timedelta(hours=2))
    assert h.get("PAY").team == "tier3"
    assert not h.timeline("PAY", "sla.breached")


def test_an_answer_before_arrival_does_not_count_for_the_new_team(h: Harness) -> None:
    h.create("PAY", subject="card payments failing", category="payments", priority="P1")
    h.act("PAY", "acknowledge", by="rita")  # Tier 1 answered, before Tier 3 had it
    h.advance(timedelta(minutes=5))
    h.act("PAY", "reassign", by="rita", to="tier3")
    h.advance(timedelta(minutes=16))
    assert ("sla.breached", "tier3") in [(k, t) for _, k, _, t in _level_clocks(h, "PAY")]


def test_a_team_with_no_target_of_its_own_gets_no_clock(h: Harness) -> None:
    h.create("PAY", subject="card payments failing", category="payments", priority="P1")
    h.act("PAY", "escalate", by="rita")  # billing: no row, no level
    h.advance(timedelta(hours=3))
    assert _level_clocks(h, "PAY") == []
    assert h.get("PAY").team == "billing"


def test_unacknowledged_p0_from_the_web_form_has_a_response_clock(h: Harness) -> None:
    """The P0 ladder pages Tier 3 at once (level T3, the ticket stays with Tier 1): Tier
    3's 15 min runs from then; unanswered, the escalation climbs to Tier 4 (1 h)."""
    h.create("DOWN", subject="site down for everyone", priority="P0", channel="web")
    assert h.get("DOWN").level == "T3"
    h.advance(timedelta(minutes=16))
    assert _level_clocks(h, "DOWN")[:2] == [
        (12, "sla.warning", "sla row tier3×P0 response", "tier3"),
        (15, "sla.breached", "sla row tier3×P0 response", "tier3"),
    ]
    assert h.get("DOWN").level == "T4"


def test_the_level_reached_by_a_person_keeps_its_own_response(h: Harness) -> None:
    h.create("Q", subject="question", priority="P2")
    h.act("Q", "escalate", by="rita", to="T2")
    h.advance(timedelta(minutes=31))
    assert _level_clocks(h, "Q")[-1] == (30, "sla.breached", "level T2 response", None)


# ----------------------------------------------------------------------------- class 8

MONITORED = """
id: monitored
teams:
  - {id: support, contacts: {email: support@example.com}, manager: sam}
people:
  - {id: sam, roles: [support_manager], contacts: {email: sam@example.com}}
roles: [{id: support_manager}]
priorities: [{id: P1}, {id: P3}]
categories: [{id: general, owner: support}]
routing: {default_priority: P3, default_category: general, dissatisfaction_below: -0.5}
triggers:
  - id: reply-while-waiting
    kind: automatic
    "on": customer_reply
    when: {priority: [P1]}
    then: {notify: [support_manager]}
  - id: mood-dropped
    kind: automatic
    "on": dissatisfaction
    then: {notify: [support_manager]}
"""


@pytest.fixture
def m(store: Store) -> Harness:
    m = Harness.start(store, T0)
    m.apply(policy(MONITORED))
    return m


def _fired(m: Harness, ref: str) -> list[str]:
    return [e.data["trigger"] for e in m.timeline(ref, "trigger.fired")]


def test_customer_reply_while_waiting_alerts_the_manager(m: Harness) -> None:
    m.create("W", subject="photos gone", description="please look", priority="P1")
    m.act("W", "waiting_on_customer", by="tess")
    m.advance(timedelta(minutes=30))
    m.act("W", "customer_reply", by="customer", text="Here is the file you asked for.")
    assert _fired(m, "W") == ["reply-while-waiting"]
    assert (m.now, "email", "sam") in m.sent("W")
    fired = only(m.timeline("W", "trigger.fired"))
    assert fired.reason == "the customer replied while we waited on them"


def test_reply_when_not_waiting_or_at_another_priority_is_not_alerted(m: Harness) -> None:
    m.create("N", subject="photos gone", description="please look", priority="P1")
    m.act("N", "customer_reply", by="customer", text="Any news?")  # nobody waited on them
    m.create("L", subject="idea", description="a suggestion", priority="P3")
    m.act("L", "waiting_on_customer", by="tess")
    m.act("L", "customer_reply", by="customer", text="Sure, here it is.")  # P3: `when` fails
    assert _fired(m, "N") == [] and _fired(m, "L") == []


def test_a_later_reply_whose_mood_drops_alerts_once(m: Harness) -> None:
    m.create("S", subject="album question", description="Hello, a quick question please.")
    m.act("S", "customer_reply", by="customer", text="Thanks, that helps.")
    assert _fired(m, "S") == []
    m.act(
        "S",
        "customer_reply",
        by="customer",
        text="This is terrible and useless, I am furious, worst service ever.",
    )
    assert _fired(m, "S") == ["mood-dropped"]
    assert "reads dissatisfied" in (m.timeline("S", "trigger.fired")[0].reason or "")
    m.act("S", "customer_reply", by="customer", text="Still awful, I hate this.")
    assert _fired(m, "S") == ["mood-dropped"]  # already alerted: not again


# ----------------------------------------------------------------------------- class 10

CEILING = """
id: ceiling
levels:
  - {id: L1, team: frontline, response: 4h}
  - {id: L2, team: specialists, response: 2h}
  - {id: L3, team: engineering, response: 1h}
  - {id: L4, team: management, response: 30m}
  - {id: L5, team: executive, response: 15m}
people:
  - {id: henrik, contacts: {email: henrik@example.com}}
teams:
  - {id: frontline, level: L1, manager: henrik, contacts: {email: fl@example.com}}
  - {id: specialists, level: L2, manager: henrik, contacts: {email: sp@example.com}}
  - {id: engineering, level: L3, contacts: {email: eng@example.com}}
  - {id: management, level: L4, contacts: {email: mgmt@example.com}}
  - {id: executive, level: L5, contacts: {email: exec@example.com}}
priorities: [{id: SEV-4}]
sla: {on_breach: [escalate]}
categories:
  - {id: general_inquiry, level: L1, auto_escalate_up_to: L2}
  - {id: technical, level: L2}
triggers:
  - id: breach-confirmed
    kind: management
    "on": sla_breach
    then: {min_level: L4}
  - id: same-issue-twice
    kind: threshold
    threshold: {related: customer_category, more_than: 1, window: 7d, per: customer}
    then: {min_level: L2}
routing: {default_priority: SEV-4, default_category: general_inquiry}
"""


@pytest.fixture
def c(store: Store) -> Harness:
    c = Harness.start(store, T0)
    c.apply(policy(CEILING))
    return c


def test_unanswered_question_stops_at_a_management_alert(c: Harness) -> None:
    c.create("Q", subject="How does a setting work?", category="general_inquiry")
    c.advance(timedelta(hours=4, minutes=1))  # timeout → auto escalate (not on to L4)
    assert c.get("Q").level == "L2"
    c.advance(timedelta(hours=2))  # timeout again → management alert, no climb
    assert c.get("Q").level == "L2"
    c.advance(timedelta(days=2))
    assert c.get("Q").level == "L2"
    top = c.timeline("Q", "escalation.at_top")[0]
    assert "only up to L2" in top.data["note"]
    assert (T0 + timedelta(hours=6), "email", "henrik") in c.sent("Q")
    assert not [s for s in c.sent("Q") if "exec" in s[2] or "mgmt" in s[2]]


def test_a_category_without_a_ceiling_still_climbs(c: Harness) -> None:
    c.create("T", subject="Editor crashes", category="technical")
    c.advance(timedelta(hours=2, minutes=1))
    assert c.get("T").level == "L4"  # breach → L3, then the breach trigger → L4


def test_same_customer_same_issue_links_different_issue_does_not(c: Harness) -> None:
    who = {"email": "li@example.com"}
    c.create("A", subject="How do I export?", category="general_inquiry", customer=who)
    c.create("B", subject="Crash on save", category="technical", customer=who)
    assert c.get("A").parent_id is None and c.get("B").parent_id is None  # different things
    c.create("C", subject="Export again?", category="general_inquiry", customer=who)
    parent = c.get("C").parent_id
    assert parent is not None and c.get("A").parent_id == parent  # the same issue: linked
    assert c.get("B").parent_id is None


# ------------------------------------------------------------------ class 10: hand-off

HANDOFF = """
id: handoff
people: [{id: ana}, {id: bo}]
schedules:
  - id: primary
    timezone: UTC
    layers: [{kind: daily, start: "2026-03-02T09:00", people: [ana, bo]}]
  - id: backup
    timezone: UTC
    layers: [{kind: daily, start: "2026-03-02T09:00", people: [bo, ana]}]
levels:
  - {id: L1, team: support}
  - {id: L3, team: ops}
teams:
  - {id: ops, level: L3, schedule: primary}
  - {id: support, level: L1}
  - {id: db, schedule: primary}
  - {id: sales}
priorities: [{id: P1, ladder: page}, {id: P3}]
ladders:
  - id: page
    steps: [{after: 0m, notify: [{schedule: primary}]}]
categories:
  - {id: outage, owner: ops}
  - {id: question, owner: support}
  - {id: lead, owner: sales}
  - {id: replication, owner: sales, also: [db]}
routing: {default_priority: P3, default_category: question}
"""


def test_handoff_lists_every_open_escalation_the_incoming_person_answers_for() -> None:
    h = Harness.start(MemoryStore(), datetime(2026, 3, 9, 12, tzinfo=UTC))
    h.apply(policy(HANDOFF))
    h.create("OPS", subject="db down", category="outage")  # the schedule's own team
    h.create("PAGED", subject="checkout broken", priority="P1")  # support, paged by ladder
    h.create("UP", subject="question")
    h.act("UP", "escalate", by="ana", to="L3")  # support's ticket, now at ops's level
    h.create("ALSO", subject="replica lag", category="replication")  # db engaged with it
    h.create("MINE", subject="a lead", category="lead")
    h.act("MINE", "reassign", by="ana", to="ana")  # ana owns it
    h.create("NOT", subject="another lead", category="lead")  # nobody on call answers it
    h.create("Q", subject="another question")  # support at L1: not on call
    h.advance(timedelta(hours=21))
    with h.store.unit_of_work() as uow:
        handoffs = [
            e.data
            for e in uow.timeline.after(0, 10_000)
            if e.kind == "oncall.handoff" and e.data["schedule"] == "primary"
        ]
    assert handoffs[0]["to"] == "ana"
    assert handoffs[0]["open"] == ["OPS", "PAGED", "UP", "ALSO", "MINE"]


def test_a_path_step_below_the_current_level_is_not_a_step_up() -> None:
    """A ladder raised the escalation to T3 while Tier 1 kept it: escalating along the
    path (payments: billing → tier3 here; tier2 in a path) never sends it to a lower tier."""
    from escalade.escalation.ladder import next_up

    p = policy(TIERS.replace("path: [billing, tier3]", "path: [tier2, billing, tier3]"))
    rung = next_up(p, "payments", "tier1", "tier1", "T3", None)
    assert (rung.team, rung.level) == ("billing", None)  # a team with no tier is not "below"
    rung = next_up(p, "payments", "tier1", "billing", "T3", None)
    assert (rung.team, rung.level) == ("tier3", "T3")
    assert next_up(p, "payments", "tier1", "tier1", "T1", None).team == "tier2"


# ----------------------------------------------------------------------------- class 9

BANDS = """
id: bands
levels: [{id: L1, team: frontline}, {id: L2, team: specialists}]
teams:
  - {id: frontline, level: L1, manager: henrik, contacts: {email: fl@example.com}}
  - {id: specialists, level: L2, manager: henrik, contacts: {email: sp@example.com}}
  - {id: csm, contacts: {email: csm@example.com}}
people: [{id: henrik, contacts: {email: henrik@example.com}}]
priorities: [{id: P2}]
sla: {on_breach: [notify_manager]}
categories:
  - {id: dispute, level: L1, authority: money, sla: {resolution: 10d}}
authority:
  actions:
    - id: money
      bands:
        - {below: 100, authority: L1, timeline: Resolve immediately}
        - {from: 100, below: 500, authority: L2, timeline: 24-48 hours,
           resolution: {target: 24h, maximum: 48h}}
followups:
  - {id: vip-review, what: CSM review due, every: 4h, if_idle: true, to: {team: csm},
     tags: [VIP]}
routing:
  default_priority: P2
  default_category: dispute
  rules:
    - {id: vip, when: {vip: true}, then: {tags: [VIP]}}
  vip_monthly_value: 100
"""


def test_a_disputes_amount_band_sets_its_resolution_clock() -> None:
    b = Harness.start(MemoryStore(), T0)
    b.apply(policy(BANDS))
    b.create("MID", subject="disputed charge", amount=250)
    b.create("SMALL", subject="disputed charge", amount=40)
    b.act("MID", "acknowledge", by="chloe")
    b.advance(timedelta(hours=49))
    mid = [(e.kind, e.data.get("target_missed", False)) for e in b.timeline("MID", "sla.warning")]
    assert mid == [("sla.warning", False), ("sla.warning", True)]
    breach = only(b.timeline("MID", "sla.breached"))
    assert breach.at == T0 + timedelta(hours=48)
    assert breach.data["source"] == "authority money band 'from 100 below 500'"
    # no band timeline of its own: the category's 10 days still apply
    assert b.timeline("SMALL", "sla.breached") == []


def test_a_followup_with_tags_runs_only_for_escalations_that_carry_them() -> None:
    b = Harness.start(MemoryStore(), T0)
    b.apply(policy(BANDS))
    b.create(
        "VIP", subject="carer access", customer={"email": "v@example.com", "monthly_value": 150}
    )
    b.create(
        "STD", subject="carer access", customer={"email": "s@example.com", "monthly_value": 10}
    )
    b.advance(timedelta(hours=4, minutes=1))
    assert [e.data["what"] for e in b.timeline("VIP", "reminder.due")] == ["CSM review due"]
    assert b.timeline("STD", "reminder.due") == []


def test_reply_while_waiting_is_seen_when_the_policy_does_not_pause_clocks() -> None:
    text = MONITORED.replace(
        "categories: [{id: general, owner: support}]",
        "categories: [{id: general, owner: support}]\nsla: {pause_when_waiting_on_customer: false}",
    )
    w = Harness.start(MemoryStore(), T0)
    w.apply(policy(text))
    w.create("NP", subject="photos gone", description="please look", priority="P1")
    w.act("NP", "waiting_on_customer", by="tess")
    w.act("NP", "customer_reply", by="customer", text="Here it is.")
    w.act("NP", "customer_reply", by="customer", text="And one more file.")  # no longer waiting
    assert _fired(w, "NP") == ["reply-while-waiting"]


def test_arrival_response_precedence() -> None:
    from escalade.sla.clocks import arrival_response

    p = policy(TIERS)
    found = arrival_response(p, "tier3", "T3", "P1")
    assert found is not None and found[1] == "tier3"
    assert found[0].source == "sla row tier3×P1" and found[0].target == timedelta(minutes=15)
    # a level reached while the team stays: the level's own team's row
    found = arrival_response(p, "tier1", "T3", "P0")
    assert found is not None and found[1] == "tier3"
    # only the team moved (same level): no row for billing, nothing of the level's
    assert arrival_response(p, "billing", "T3", "P1", level_reached=False) is None
    # the level's own response when no row applies
    found = arrival_response(p, "tier2", "T2", "P2")
    assert found is not None and found[1] is None and found[0].source == "level T2"
