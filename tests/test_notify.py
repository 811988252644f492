"""Who a message reaches and what handling rules do to it (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from escalade.escalation.messages import recipient_messages
from escalade.escalation.notify import Message, apply_handling, manager_of
from escalade.policy import policy_from_text
from escalade.policy.models import Recipient

POLICY = policy_from_text(
    """
id: notify
people: [{id: ana}, {id: bo}, {id: cy, roles: [head]}]
roles: [{id: head}]
teams:
  - {id: legal, contacts: {chat: "#legal", email: legal@example.com}}
  - {id: ops, contacts: {chat: "#ops"}, members: [{person: ana, role: lead}, bo]}
  - {id: sales, manager: head}
handling:
  - {id: no-chat, kind: never_in_chat}
  - {id: quiet, kind: no_customer_alert}
""",
    "notify.yaml",
)
AT = datetime(2026, 3, 9, 12, tzinfo=UTC)


def test_a_team_is_reached_on_its_own_contact_for_the_channel() -> None:
    def to(team: str, channel: str) -> list[tuple[str, str]]:
        return [
            (m.channel, m.to)
            for m in recipient_messages(
                POLICY,
                Recipient(team=team),
                channel,
                audience="internal",
                template=None,
                team=None,
                customer_email=None,
                at=AT,
                overrides=None,
            )
        ]

    assert to("legal", "email") == [("email", "legal@example.com")]
    assert to("legal", "chat") == [("chat", "#legal")]
    assert to("ops", "email") == [("chat", "#ops")]  # no email: the way its contacts allow
    assert to("sales", "chat") == [("chat", "team:sales")]  # no contacts: the team itself


def test_never_in_chat_moves_to_the_team_email_or_holds() -> None:
    legal = Message("chat", "#legal", "internal", None, via="team:legal")
    ops = Message("chat", "#ops", "internal", None, via="team:ops")
    person = Message("chat", "ana", "internal", None, via="person:ana")
    sent, held = apply_handling(POLICY, ["no-chat"], [legal, ops, person])
    assert [(m.channel, m.to) for m in sent] == [("email", "legal@example.com"), ("email", "ana")]
    assert [(h.message.to, h.rerouted) for h in held] == [
        ("#legal", True),
        ("#ops", False),
        ("ana", True),
    ]
    assert held[1].reason == "never on chat, and no email address for it"


def test_customer_silence_holds_customer_messages_only() -> None:
    customer = Message("email", "c@example.com", "customer", "ack")
    internal = Message("email", "legal@example.com", "internal", None)
    sent, held = apply_handling(POLICY, ["quiet"], [customer, internal])
    assert sent == [internal] and [h.message for h in held] == [customer]


def test_manager_is_the_manager_role_else_the_team_leads() -> None:
    assert manager_of(POLICY, "sales") == [("cy", "role:head")]
    assert manager_of(POLICY, "ops") == [("ana", "lead of ops")]
    assert manager_of(POLICY, "legal") == [("manager:legal", "no manager in policy")]


def test_templates_see_the_team_name_and_age() -> None:
    from datetime import timedelta

    from escalade.escalation.messages import template_context
    from escalade.escalation.notify import render
    from escalade.store.rows import EscalationRow

    named = policy_from_text(
        """
id: names
teams: [{id: legal, name: Legal & Compliance}]
templates: [{id: t, body: "{{ escalation.team_name }} for {{ escalation.age }}"}]
""",
        "names.yaml",
    )
    esc = EscalationRow(
        id=1,
        ref="E1",
        policy_version_id=1,
        parent_id=None,
        subject="s",
        state="open",
        category=None,
        team="legal",
        level=None,
        priority=None,
        owner=None,
        snapshot={"decision": {}},
        customer={},
        package={},
        created_at=AT,
        updated_at=AT,
        acknowledged_at=None,
        resolved_at=None,
        closed_at=None,
        version=1,
    )
    context = template_context(esc, named, AT + timedelta(minutes=90))
    assert render(named, "t", context) == ("", "Legal & Compliance for 1h30m")
