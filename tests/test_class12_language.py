"""Issue 16 class 12, what the language could not say before: all hands (``everyone``),
the status page (``status_page`` recipient, audience and cadence), an incident channel per
escalation (``{ref}`` in a notification address) and a level's direct response target
(``response_direct``, seed 002 Tier 2 "4 hours (direct)")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from escalade.escalation.messages import created_messages, with_ref
from escalade.escalation.notify import ALL_HANDS, Message, resolve
from escalade.policy import PolicyInvalid, policy_from_text
from escalade.policy.models import Recipient
from escalade.routing.models import Decision
from escalade.sla.clocks import ClockName, sla_targets

AT = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)

POLICY = """
id: c12
levels:
  - {id: T1, team: front, response: 15m}
  - {id: T2, team: tech, response: 30m, response_direct: 4h}
people: [{id: ann}, {id: bo}, {id: cy}]
teams:
  - {id: front, level: T1, members: [ann, bo]}
  - {id: tech, level: T2, members: [bo, cy]}
  - {id: empty}
priorities: [{id: P0, updates: {status_page: 30m}}, {id: P3}]
status_page: {channel: webhook, address: "https://status.example/api", template: sp}
templates: [{id: sp, audience: status_page, body: "{{ escalation.subject }}"}]
notifications:
  - {id: room, priorities: [P0], to: {team: tech}, channel: chat, address: "#war-{ref}"}
  - {id: all, priorities: [P0], to: {everyone: true}, channel: email}
  - {id: page, priorities: [P0], to: {status_page: true}, channel: webhook, audience: status_page}
"""


def test_everyone_is_every_person_of_every_team_once() -> None:
    p = policy_from_text(POLICY)
    got = resolve(p, Recipient(everyone=True), team=None, customer_email=None, at=AT)
    assert got == [
        ("ann", f"{ALL_HANDS}:front"),
        ("bo", f"{ALL_HANDS}:front"),
        ("cy", f"{ALL_HANDS}:tech"),
        ("team:empty", f"{ALL_HANDS}:empty"),  # a team without people by its own address
    ]


def test_the_status_page_recipient_is_the_policy_status_page() -> None:
    p = policy_from_text(POLICY)
    got = resolve(p, Recipient(status_page=True), team=None, customer_email=None, at=AT)
    assert got == [("https://status.example/api", "status page")]


def test_a_p0_opens_its_own_room_tells_all_hands_and_the_status_page() -> None:
    p = policy_from_text(POLICY)
    decision = Decision(category=None, team="tech", level="T2", priority="P0")
    messages = with_ref(created_messages(p, decision, None, AT, None), "ESC-9")
    to = [(m.channel, m.to, m.audience) for m in messages]
    assert ("chat", "#war-ESC-9", "internal") in to
    assert ("webhook", "https://status.example/api", "status_page") in to
    assert {m.to for m in messages if (m.via or "").startswith(ALL_HANDS)} == {
        "ann",
        "bo",
        "cy",
        "team:empty",
    }
    # the room, all hands and the status page do not stand in for the team's own notice
    assert any(m.via.startswith("team:tech") for m in messages)


def test_with_ref_only_touches_addresses_that_ask_for_it() -> None:
    plain = Message("chat", "#incidents", "internal", None)
    room = Message("chat", "#war-{ref}", "internal", None)
    assert with_ref([plain, room], "A-1") == [plain, Message("chat", "#war-A-1", "internal", None)]


def test_response_direct_applies_where_the_escalation_starts() -> None:
    p = policy_from_text(POLICY)
    direct = sla_targets(p, category_id=None, team_id="tech", priority_id="P3")
    assert direct[ClockName.response].target == timedelta(hours=4)
    plain = sla_targets(p, category_id=None, team_id="front", priority_id="P3")
    assert plain[ClockName.response].target == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (
                'status_page: {channel: webhook, address: "https://status.example/api", '
                "template: sp}",
                "",
            ),
            "needs a top-level 'status_page'",
        ),
        (("template: sp}\ntemplates", "template: nope}\ntemplates"), "unknown template 'nope'"),
        (
            ("response_direct: 4h", "response_direct: 0m"),
            "response_direct must be longer than zero",
        ),
        (("{everyone: true}", "{everyone: true, team: tech}"), "exactly one of"),
    ],
)
def test_bad_class12_keys_are_named(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in POLICY
    with pytest.raises(PolicyInvalid) as err:
        policy_from_text(POLICY.replace(old, new))
    assert message in str(err.value)


def test_a_rule_that_silences_customers_holds_the_status_page_too() -> None:
    from escalade.escalation.notify import apply_handling

    p = policy_from_text(
        POLICY + "handling:\n  - {id: hush, kind: no_customer_reply}\n"
        "  - {id: plain, kind: never_in_chat}\n"
    )
    post = Message("webhook", "https://status.example/api", "status_page", "sp")
    internal = Message("email", "bo", "internal", None)
    allowed, held = apply_handling(p, ["hush"], [post, internal])
    assert allowed == [internal]
    assert [(h.message, h.rule) for h in held] == [(post, "hush")]
    assert apply_handling(p, ["plain"], [post])[0] == [post]  # other rules leave it alone
