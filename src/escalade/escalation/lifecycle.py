"""The escalation lifecycle: states, actions and which action is allowed when. Pure.

    open ──acknowledge──► acknowledged ──investigate──► investigating
      │                         │                            │
      └──────────── resolve ────┴────────────────────────────┘
                                ▼
                            resolved ──close──► closed
                                ▲  └──reopen──► open
                                └──────── reopen (from closed too)

``escalate``, ``deescalate``, ``reassign``, ``comment`` and ``customer_reply`` keep the state
(an escalation moved up the ladder stays acknowledged by whoever acknowledged it unless the
policy restarts acknowledgement, which the service handles) and are refused once resolved
or closed, except ``comment``.
"""

from __future__ import annotations

from enum import StrEnum

from escalade.errors import EscaladeError


class State(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    investigating = "investigating"
    resolved = "resolved"
    closed = "closed"


class Action(StrEnum):
    acknowledge = "acknowledge"
    investigate = "investigate"
    escalate = "escalate"
    deescalate = "deescalate"
    reassign = "reassign"
    resolve = "resolve"
    reopen = "reopen"
    close = "close"
    comment = "comment"
    customer_reply = "customer_reply"
    waiting_on_customer = "waiting_on_customer"
    recategorise = "recategorise"


class EscalateCause(StrEnum):
    """Why an escalation moved up (docs/contracts.md ``cause``)."""

    sla_breach = "sla_breach"
    no_ack = "no_ack"
    ladder_step = "ladder_step"
    manual = "manual"
    customer_request = "customer_request"
    supervisor_request = "supervisor_request"
    threshold = "threshold"
    trigger = "trigger"


ACTIVE = frozenset({State.open, State.acknowledged, State.investigating})
DONE = frozenset({State.resolved, State.closed})
ACTIVE_STATES = [State.open.value, State.acknowledged.value, State.investigating.value]
"""The active states as the store's filters take them (in lifecycle order)."""


def is_done(state: str) -> bool:
    """Resolved or closed: an escalation that no clock, ladder or reminder acts on."""
    return state in DONE


class TransitionError(EscaladeError, ValueError):
    """An action that the escalation's state does not allow, with the reason."""

    def __init__(self, action: Action, state: State, reason: str):
        super().__init__(f"cannot {action.value} an escalation that is {state.value}: {reason}")
        self.action = action
        self.state = state
        self.reason = reason


_NEXT: dict[Action, dict[State, State]] = {
    Action.acknowledge: {State.open: State.acknowledged},
    Action.investigate: {
        State.open: State.investigating,
        State.acknowledged: State.investigating,
    },
    Action.resolve: {s: State.resolved for s in ACTIVE},
    Action.close: {State.resolved: State.closed},
    Action.reopen: {State.resolved: State.open, State.closed: State.open},
    Action.escalate: {s: s for s in ACTIVE},
    Action.deescalate: {s: s for s in ACTIVE},
    Action.reassign: {s: s for s in ACTIVE},
    Action.waiting_on_customer: {s: s for s in ACTIVE},
    Action.customer_reply: {s: s for s in State},
    Action.comment: {s: s for s in State},
    Action.recategorise: {s: s for s in State},
}

_WHY_NOT: dict[tuple[Action, State], str] = {
    (Action.acknowledge, State.acknowledged): "it is already acknowledged",
    (Action.acknowledge, State.investigating): "it is already being investigated",
    (Action.investigate, State.investigating): "it is already being investigated",
    (Action.close, State.open): "resolve it first",
    (Action.close, State.acknowledged): "resolve it first",
    (Action.close, State.investigating): "resolve it first",
    (Action.close, State.closed): "it is already closed",
    (Action.resolve, State.resolved): "it is already resolved",
    (Action.reopen, State.open): "it is not resolved or closed",
    (Action.reopen, State.acknowledged): "it is not resolved or closed",
    (Action.reopen, State.investigating): "it is not resolved or closed",
}


def next_state(state: State, action: Action) -> State:
    """The state after ``action``, or TransitionError saying why it is not allowed."""
    allowed = _NEXT[action]
    if state in allowed:
        return allowed[state]
    reason = _WHY_NOT.get((action, state))
    if reason is None:
        reason = "reopen it first" if state in DONE else f"it is {state.value}"
    raise TransitionError(action, state, reason)
