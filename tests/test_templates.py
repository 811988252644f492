"""Message templates: missing values shown as missing, checked at load, defaults for every
message, the handling section, and the send-time handling and confidentiality rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.escalation.messages import template_context
from escalade.escalation.notify import (
    Message,
    apply_handling,
    default_template,
    permitted_only,
    render_message,
)
from escalade.policy import PolicyInvalid, policy_from_text, templates
from escalade.policy.models import HandlingKind
from escalade.store.rows import EscalationRow

AT = datetime(2026, 3, 9, 12, tzinfo=UTC)
EXAMPLES = Path(__file__).parent.parent / "examples" / "policies"

POLICY = policy_from_text(
    """
id: tpl
roles: [{id: counsel}, {id: agent}]
people:
  - {id: gc, name: Gina Counsel, roles: [counsel], contacts: {email: gc@example.com}}
  - {id: ana, name: Ana Agent, roles: [agent]}
  - {id: lee, name: Lee Lawyer}
  - {id: out, name: Outsider}
teams:
  - {id: legal, name: Legal, members: [lee], contacts: {email: legal@example.com, chat: "#legal"}}
  - {id: support, name: Support, members: [ana], contacts: {chat: "#support"}}
priorities: [{id: P1, name: High}]
categories:
  - {id: lawsuit, name: Legal threat, owner: legal, handling: [hold, no-chat]}
handling:
  - id: hold
    kind: do_not_engage
    forward_to: counsel@lawfirm.example
    ticket_note: Escalated to Legal
    never: [Admit fault, Discuss legal matters]
  - {id: no-chat, kind: never_in_chat}
  - {id: fraud-quiet, kind: no_customer_alert}
  - {id: security-quiet, kind: no_customer_reply}
templates:
  - id: summary
    subject: "{{ escalation.ref }} for {{ escalation.customer.name }}"
    body: >-
      Owner {{ escalation.owner }}; notes {{ escalation.fields.notes }};
      age {{ escalation.age }}
  - id: with-default
    body: "Agent {{ escalation.agent_name | default('the support team') }}"
  - id: shows-never
    body: "{% for n in escalation.never %}[{{ n }}]{% endfor %}"
""",
    "tpl.yaml",
)


def _esc(**over: Any) -> EscalationRow:
    base: dict[str, Any] = dict(
        id=1,
        ref="E-1",
        policy_version_id=1,
        parent_id=None,
        subject="Letter from a lawyer",
        state="open",
        category="lawsuit",
        team="legal",
        level=None,
        priority="P1",
        owner=None,
        snapshot={"decision": {"handling": ["hold", "no-chat"], "reasons": ["r1", "r2"]}},
        customer={"email": "c@example.com"},
        package={"fields": {"notes": ""}},
        created_at=AT,
        updated_at=AT,
        acknowledged_at=None,
        resolved_at=None,
        closed_at=None,
        version=1,
    )
    base.update(over)
    return EscalationRow(**base)


def _internal(template: str | None, channel: str = "email") -> Message:
    return Message(channel, "legal@example.com", "internal", template, via="team:legal")


# ---------------------------------------------------------------- missing values


def test_missing_none_and_empty_values_render_as_not_given() -> None:
    ctx = template_context(_esc(), POLICY, None)
    out = render_message(POLICY, _internal("summary"), ctx)
    # no customer name (absent key), no owner (None), empty notes, no age (no "now")
    assert out.subject == "E-1 for (not given)"
    assert out.body.startswith("Owner (not given); notes (not given); age (not given)")
    assert "  " not in out.subject and ": ;" not in out.body


def test_default_filter_still_chooses_words_for_a_missing_value() -> None:
    ctx = template_context(_esc(), POLICY, AT)
    body = render_message(POLICY, _internal("with-default"), ctx).body
    assert body.startswith("Agent the support team")
    owned = template_context(_esc(owner="ana"), POLICY, AT)
    assert render_message(POLICY, _internal("with-default"), owned).body.startswith(
        "Agent Ana Agent"
    )


def test_context_offers_exactly_the_documented_escalation_keys() -> None:
    esc = _esc(owner="ana", resolved_at=AT + timedelta(hours=2))
    pkg = {
        "description": "d",
        "channel": "email",
        "amount": 5,
        "history": {"a": 1},
        "technical_context": {"b": 2},
    }
    esc = _esc(
        owner="ana",
        resolved_at=AT + timedelta(hours=2),
        level="L1",
        package=pkg,
        snapshot={
            "decision": {
                "handling": ["hold"],
                "response_target": "1h",
                "signals": {"sentiment": 0.1},
            }
        },
    )
    ctx = template_context(
        esc, POLICY, AT + timedelta(hours=2), resolution="fixed", resolved_at=esc.resolved_at
    )
    assert set(ctx["escalation"]) == templates.ESCALATION_KEYS
    assert set(ctx) | {"message"} == templates.TOP_LEVEL
    assert ctx["escalation"]["resolution_time"] == "2h"
    assert ctx["escalation"]["priority_name"] == "High"
    assert ctx["escalation"]["category_name"] == "Legal threat"
    assert ctx["escalation"]["never"] == ["Admit fault", "Discuss legal matters"]
    assert ctx["escalation"]["forward_to"] == ["counsel@lawfirm.example"]


# ---------------------------------------------------------------- checked at load


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("a\n{{ escalation.subjekt }}", 2, "unknown variable 'escalation.subjekt'"),
        ("a\nb\n{{ escalaton.ref }}", 3, "unknown variable 'escalaton'"),
        ("{{ escalation['nope'] }}", 1, "unknown variable 'escalation.nope'"),
        ("ok\n{% if x %}", 2, "Unexpected end of template"),
        ("{{ escalation.ref }", 1, "unexpected '}'"),
    ],
)
def test_a_bad_template_is_a_policy_error_naming_template_and_line(
    body: str, line: int, problem: str
) -> None:
    text = "id: bad\ntemplates:\n  - id: page\n    body: " + json.dumps(body) + "\n"
    with pytest.raises(PolicyInvalid) as err:
        policy_from_text(text, "bad.yaml")
    message = str(err.value)
    assert f"template 'page' body, line {line}: " in message
    assert problem in message


def test_names_in_scope_and_free_form_parts_pass_the_check() -> None:
    ok = (
        "{{ ref }} {{ escalation.customer.anything }} {{ fields.x }} {{ package.y }}"
        " {{ decision.z }} {{ message.why }} {% for r in escalation.reasons %}{{ r }}{% endfor %}"
        " {% set n = 1 %}{{ n }} {{ range(3) | list }}"
    )
    assert templates.check(ok) == []


def test_built_in_templates_pass_their_own_check() -> None:
    for subject, body in templates.BUILTIN.values():
        assert templates.check(subject) == [] and templates.check(body) == []


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_templates_show_missing_values_rather_than_blanks(path: Path) -> None:
    """No example template hides a missing value behind ``default('')``."""
    assert "default('')" not in path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- every message has one


def test_a_message_without_a_template_uses_the_built_in_one() -> None:
    ctx = template_context(_esc(), POLICY, AT)
    page = Message("pagerduty", "lee", "internal", None, via="schedule:x", data={"step": 2})
    out = render_message(POLICY, page, ctx)
    assert out.template == "builtin:internal"
    assert out.subject == "[P1] E-1: Letter from a lawyer"
    assert "Ladder (not given), step 2" in out.body
    assert "Team: Legal" in out.body and "Why: r1; r2" in out.body
    customer = Message("email", "c@example.com", "customer", None, via="customer")
    assert render_message(POLICY, customer, ctx).template == "builtin:customer"


def test_a_policy_default_template_overrides_the_built_in_one_per_audience_and_channel() -> None:
    policy = policy_from_text(
        """
id: d
templates:
  - {id: any-internal, default: true, body: "internal {{ escalation.ref }}"}
  - {id: chat-internal, default: true, channel: chat, body: "chat {{ escalation.ref }}"}
""",
        "d.yaml",
    )
    assert default_template(policy, "internal", "chat")[0] == "chat-internal"
    assert default_template(policy, "internal", "email")[0] == "any-internal"
    assert default_template(policy, "customer", "email")[0] == "builtin:customer"
    ctx = template_context(_esc(snapshot={"decision": {}}), policy, AT)
    out = render_message(policy, Message("chat", "#x", "internal", None), ctx)
    assert out.body == "chat E-1\n"
    assert out.subject == "[P1] E-1: Letter from a lawyer"  # no subject: the default one's


# ---------------------------------------------------------------- the handling section


def test_every_internal_message_shows_never_forward_and_ticket_note() -> None:
    ctx = template_context(_esc(), POLICY, AT)
    for template in ("summary", None):
        body = render_message(POLICY, _internal(template), ctx).body
        assert "Handling (hold, no-chat):" in body
        assert "- NEVER: Admit fault\n- NEVER: Discuss legal matters" in body
        assert "- Forward to: counsel@lawfirm.example" in body
        assert "- Ticket note: Escalated to Legal" in body


def test_a_template_showing_never_itself_gets_no_second_section() -> None:
    ctx = template_context(_esc(), POLICY, AT)
    body = render_message(POLICY, _internal("shows-never"), ctx).body
    assert body == "[Admit fault][Discuss legal matters]\n"


def test_customer_messages_never_carry_the_handling_section() -> None:
    ctx = template_context(_esc(), POLICY, AT)
    msg = Message("email", "c@example.com", "customer", "summary", via="customer")
    assert "NEVER" not in render_message(POLICY, msg, ctx).body


def test_no_handling_section_without_handling_rules() -> None:
    ctx = template_context(_esc(snapshot={"decision": {}}), POLICY, AT)
    assert "Handling" not in render_message(POLICY, _internal(None), ctx).body


# ---------------------------------------------------------------- handling at send time


@pytest.mark.parametrize("rule", ["hold", "fraud-quiet", "security-quiet"])
def test_customer_silence_rules_hold_every_customer_message(rule: str) -> None:
    kind = next(h.kind for h in POLICY.handling if h.id == rule)
    assert kind in {
        HandlingKind.do_not_engage,
        HandlingKind.no_customer_alert,
        HandlingKind.no_customer_reply,
    }
    customer = Message("email", "c@example.com", "customer", None, via="customer")
    internal = _internal(None)
    allowed, held = apply_handling(POLICY, [rule], [customer, internal])
    assert allowed == [internal]
    assert [(h.message, h.rule, h.rerouted) for h in held] == [(customer, rule, False)]


def test_never_in_chat_moves_chat_to_email_or_holds_a_bare_room() -> None:
    team_chat = Message("chat", "#legal", "internal", None, via="team:legal")
    room = Message("chat", "#general", "internal", None, via="notification rule x")
    allowed, held = apply_handling(POLICY, ["no-chat"], [team_chat, room])
    assert [(m.channel, m.to) for m in allowed] == [("email", "legal@example.com")]
    assert [(h.rule, h.rerouted) for h in held] == [("no-chat", True), ("no-chat", False)]
    assert "no email address" in held[1].reason


# ---------------------------------------------------------------- confidential


CONFIDENTIAL = dict(
    teams={"legal"},
    visible_to=frozenset({"counsel"}),
    forward_to=["counsel@lawfirm.example"],
    because="category 'lawsuit' is confidential",
)


@pytest.mark.parametrize(
    ("to", "via", "audience", "allowed"),
    [
        ("team:legal", "team:legal", "internal", True),  # the team handling it
        ("legal@example.com", "notification rule a", "internal", True),  # its contact
        ("lee", "person:lee", "internal", True),  # a member of that team
        ("gc", "role:counsel", "stakeholder", True),  # holds a role in visible_to
        ("gc@example.com", "notification rule b", "internal", True),  # that person's address
        ("counsel@lawfirm.example", "rule", "internal", True),  # the forward_to address
        ("c@example.com", "customer", "customer", True),  # the customer's own message
        ("ana", "role:agent", "stakeholder", False),  # a person outside
        ("team:support", "team:support", "internal", False),  # a team outside
        ("#support", "team:support", "internal", False),  # its shared chat room
        ("#escalations", "notification rule c", "internal", False),  # a shared channel
        ("out", "person:out", "internal", False),
    ],
)
def test_confidential_escalations_notify_permitted_roles_only(
    to: str, via: str, audience: str, allowed: bool
) -> None:
    m = Message("email", to, audience, None, via=via)
    ok, held = permitted_only(POLICY, [m], rule="confidential", **CONFIDENTIAL)  # type: ignore[arg-type]
    assert (ok == [m]) is allowed
    if not allowed:
        assert held[0].rule == "confidential"
        assert held[0].reason.startswith("category 'lawsuit' is confidential: only ")
        assert held[0].reason.endswith(f"not {to}")


# ---------------------------------------------------------------- decisions show them


def test_route_explain_shows_never_and_forward_to() -> None:
    policy = str(EXAMPLES / "helpdesk-workflows.yaml")
    text = json.dumps({"subject": "My attorney will take you to court over this charge"})
    r = CliRunner().invoke(app, ["route", "--policy", policy, "--explain", "-"], input=text)
    assert r.exit_code == 0, r.output
    assert "Never:\n  - Admit fault\n  - Make promises\n  - Discuss legal matters" in r.stdout
    assert "Forward:   legal@craudiovizai.com" in r.stdout
    r = CliRunner().invoke(app, ["route", "--policy", policy, "-"], input=text)
    decision = json.loads(r.stdout)
    assert decision["never"] == ["Admit fault", "Make promises", "Discuss legal matters"]
    assert decision["forward_to"] == ["legal@craudiovizai.com"]


# ---------------------------------------------------------------- authority on resolve


def _dispute_scenario(tmp_path: Path, by: str, amount: int) -> Any:
    (tmp_path / "s.yaml").write_text(
        f"""
policy: {EXAMPLES / "platform-operations.yaml"}
start: 2026-03-02T10:00:00Z
until: 1h
events:
  - at: 0m
    create:
      ref: D-1
      subject: Client disputes an invoice
      description: The client says the March invoice was charged twice.
      category: financial_dispute
      customer: {{email: payer@example.com}}
      amount: {amount}
  - at: 30m
    resolve: {{ref: D-1, by: {by}, resolution: Refunded the double charge}}
""",
        encoding="utf-8",
    )
    return CliRunner().invoke(app, ["simulate", str(tmp_path / "s.yaml")])


@pytest.mark.parametrize(
    ("by", "amount", "allowed"),
    [
        ("ada", 50, True),  # L1 member: below 100
        ("ada", 5000, False),  # L1 member: 2,000–10,000 is the finance director's
        ("marco", 5000, False),  # finance manager: the band below
        ("nadia", 5000, True),  # finance director
        ("nobody", 50, False),  # not a person of the policy
    ],
)
def test_resolving_a_dispute_needs_the_authority_of_its_amount_band(
    tmp_path: Path, by: str, amount: int, allowed: bool
) -> None:
    r = _dispute_scenario(tmp_path, by, amount)
    if allowed:
        assert r.exit_code == 0, r.output
        events = [json.loads(line) for line in r.stdout.splitlines()]
        granted = [e for e in events if e["type"] == "authority.allowed"]
        assert granted and granted[0]["action"] == "financial_dispute"
        assert any(e["type"] == "escalation.resolved" for e in events)
    else:
        assert r.exit_code == 1
        assert "authority.financial_dispute" in r.output
        assert "may decide" in r.output or "not a person of the policy" in r.output


# ---------------------------------------------------------------- raised notices too


def test_a_raise_to_the_owner_refused_by_a_handling_rule_is_recorded() -> None:
    from escalade.clock import VirtualClock
    from escalade.routing.models import EscalationInput
    from escalade.service import EscalationService
    from escalade.service.delivery import raise_to_owner
    from escalade.store.memory import MemoryStore

    policy = policy_from_text(
        """
id: raise
teams: [{id: legal, contacts: {chat: "#legal"}}]
handling: [{id: no-chat, kind: never_in_chat}]
categories: [{id: lawsuit, owner: legal, handling: [no-chat]}]
routing: {default_category: lawsuit}
""",
        "raise.yaml",
    )
    store = MemoryStore()
    store.upgrade()
    service = EscalationService(store, VirtualClock(AT))
    service.apply_policy(policy)
    esc = service.create(EscalationInput(subject="A letter from counsel"), ref="L-1")
    with store.unit_of_work() as uow:
        uow.outbox.enqueue(
            key="failed-1",
            channel="email",
            recipient="counsel@example.com",
            audience="internal",
            template=None,
            payload={},
            at=AT,
            escalation_id=esc.id,
        )
        failed = uow.outbox.get("failed-1")
        assert failed is not None
        row = uow.escalations.get(esc.id)
        assert row is not None
        before = len(uow.timeline.for_escalation(esc.id))
        queued = raise_to_owner(policy, {}, uow, row, failed, "mailbox full", AT)
        entries = uow.timeline.for_escalation(esc.id)[before:]
        uow.commit()
    assert queued == 0  # the owner's only contact is chat, which the rule forbids
    held = [e for e in entries if e.kind == "notification.held"]
    assert [(e.data["to"], e.data["rule"]) for e in held] == [("#legal", "no-chat")]


def test_the_api_decision_shows_never_and_forward_to() -> None:
    from fastapi.testclient import TestClient
    from tests.keys import bearer, issue_key

    from escalade.api.app import create_app
    from escalade.clock import VirtualClock
    from escalade.policy import load_policy
    from escalade.settings import Settings
    from escalade.store.memory import MemoryStore

    path = EXAMPLES / "helpdesk-workflows.yaml"
    store = MemoryStore()
    app = create_app(
        Settings(policy_path=path), load_policy(path), path, VirtualClock(AT), store=store
    )
    client = TestClient(app, headers=bearer(issue_key(store, "read")))
    r = client.post(
        "/v1/route",
        json={
            "subject": "Someone is reading other users' invoices through a security vulnerability"
        },
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["category"] == "security_concern"
    assert d["never"] == [
        "Confirm or deny breach",
        "Share technical details",
        "Promise specific timelines",
    ]
    assert d["forward_to"] == ["security@craudiovizai.com"]
