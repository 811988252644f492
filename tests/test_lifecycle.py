"""The lifecycle table: every (state, action) pair is either allowed or refused with a reason."""

from __future__ import annotations

import pytest

from escalade.escalation.lifecycle import Action, State, TransitionError, next_state

ALLOWED = {
    (State.open, Action.acknowledge): State.acknowledged,
    (State.open, Action.investigate): State.investigating,
    (State.acknowledged, Action.investigate): State.investigating,
    (State.open, Action.resolve): State.resolved,
    (State.acknowledged, Action.resolve): State.resolved,
    (State.investigating, Action.resolve): State.resolved,
    (State.resolved, Action.close): State.closed,
    (State.resolved, Action.reopen): State.open,
    (State.closed, Action.reopen): State.open,
}
KEEPS_STATE_WHILE_ACTIVE = {
    Action.escalate,
    Action.deescalate,
    Action.reassign,
    Action.waiting_on_customer,
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("action", list(Action))
def test_every_pair(state: State, action: Action) -> None:
    if (state, action) in ALLOWED:
        assert next_state(state, action) is ALLOWED[(state, action)]
    elif action in (Action.comment, Action.customer_reply, Action.recategorise) or (
        action in KEEPS_STATE_WHILE_ACTIVE and state not in (State.resolved, State.closed)
    ):
        assert next_state(state, action) is state
    else:
        with pytest.raises(TransitionError) as info:
            next_state(state, action)
        assert str(info.value).startswith(f"cannot {action.value} an escalation that is")
        assert info.value.reason


def test_reasons_are_specific() -> None:
    with pytest.raises(TransitionError, match="already acknowledged"):
        next_state(State.acknowledged, Action.acknowledge)
    with pytest.raises(TransitionError, match="resolve it first"):
        next_state(State.open, Action.close)
    with pytest.raises(TransitionError, match="reopen it first"):
        next_state(State.closed, Action.escalate)
