"""Monitoring an escalation after its creation (seed 001, "Step 8: Set Monitoring"): alert
when the customer replies while the escalation waits on them, and when a later reply shows
the customer's mood dropping. Both act through the policy's triggers, so who is told (and
whether the level or priority moves) is the policy's choice:

- ``on: customer_reply`` fires when the customer replies while the escalation waits on
  them (``waiting_on_customer``);
- ``on: dissatisfaction`` fires (as at routing) the first time a reply reads as
  dissatisfied (sentiment below ``routing.dissatisfaction_below``) when the customer's
  earlier words on this escalation (the first message, each earlier reply) did not: their
  mood dropped. Once they read dissatisfied, later replies do not alert again.

``when`` is checked against the escalation as it is now (category, priority, channel,
source, tags), like ``on: sla_breach`` triggers."""

from __future__ import annotations

from datetime import datetime

from escalade.escalation.kinds import EventKind
from escalade.escalation.lifecycle import is_done
from escalade.escalation.triggers import holds_in_flight
from escalade.policy.models import Policy
from escalade.routing.signals import sentiment
from escalade.service.effects import Effects
from escalade.service.moves import apply_trigger
from escalade.store.rows import EscalationRow


def waiting_on_customer(fx: Effects, esc: EscalationRow) -> bool:
    """Is the escalation waiting on the customer (a clock paused for them, or, when the
    policy does not pause clocks, a ``waiting_on_customer`` since the last reply)?"""
    if fx.paused_since(esc) is not None:
        return True
    waiting = False
    for e in fx.timeline(esc):
        if e.kind == EventKind.escalation_waiting_on_customer:
            waiting = True
        elif e.kind == EventKind.customer_replied:
            waiting = False
    return waiting


def earlier_words(fx: Effects, esc: EscalationRow) -> list[str]:
    """What the customer said before: the escalation's own text, then each reply so far."""
    pkg = esc.package
    first = " ".join(str(pkg.get(k) or "") for k in ("subject", "description")).strip()
    replies = [
        str(e.data.get("text") or "")
        for e in fx.timeline(esc)
        if e.kind == EventKind.customer_replied
    ]
    return [first, *replies]


def on_customer_reply(
    fx: Effects,
    policy: Policy,
    esc: EscalationRow,
    text: str,
    at: datetime,
    *,
    was_waiting: bool,
    earlier: list[str],
) -> EscalationRow:
    """Run the monitoring triggers for one customer reply (after it is recorded)."""
    if is_done(esc.state):
        return esc
    if was_waiting:
        for trig in policy.triggers:
            if trig.on == "customer_reply" and holds_in_flight(trig.when, esc):
                esc = apply_trigger(
                    fx, policy, esc, trig, at, "the customer replied while we waited on them"
                )
    mood_triggers = [t for t in policy.triggers if t.on == "dissatisfaction"]
    if not mood_triggers or not text.strip():
        return esc
    score = sentiment(text)
    if score >= policy.routing.dissatisfaction_below:
        return esc
    readings = [sentiment(t) for t in earlier if t.strip()]
    if any(r < policy.routing.dissatisfaction_below for r in readings):
        return esc  # they read dissatisfied before: that was the moment to alert
    before = readings[-1] if readings else 0.0
    why = (
        f"the customer's reply reads dissatisfied (sentiment {score:.2f}; "
        f"their previous words {before:.2f})"
    )
    for trig in mood_triggers:
        if holds_in_flight(trig.when, esc):
            esc = apply_trigger(fx, policy, esc, trig, at, why)
    return esc
