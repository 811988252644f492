"""The policy's ``channels:`` section: secrets only by reference, endpoints without
credentials, fields that fit the channel type, references that resolve; and building the
instances from the environment."""

from __future__ import annotations

import jsonschema
import pytest

from escalade.channels.router import ChannelSetupError, policy_channels
from escalade.engine import CapturingChannel
from escalade.engine.outbox import NoChannel
from escalade.policy import policy_from_text
from escalade.policy.schema import policy_json_schema
from escalade.policy.validate import PolicyInvalid
from escalade.store import OutboxMessage

HEAD = """
id: ch
people: [{id: ana}]
teams: [{id: ops}, {id: billing}]
priorities: [{id: P1}, {id: P2}]
channels:
"""


def problems(channels: str) -> list[str]:
    with pytest.raises(PolicyInvalid) as err:
        policy_from_text(HEAD + channels, "ch.yaml")
    return [p.message for p in err.value.problems]


HINT = "secrets are never written in the policy: give {env: VARIABLE} or {file: /path/to/file}"


@pytest.mark.parametrize(("channel", "message"), [
    ("{id: s, type: slack, carries: [chat], webhook: 'https://hooks.slack.com/services/T/B/X'}",
     f"channels[0].webhook: a secret written inline; {HINT}"),
    ("{id: p, type: pagerduty, carries: [pagerduty], routing_key: R0UT1NGKEY}",
     f"channels[0].routing_key: a secret written inline; {HINT}"),
    ("{id: w, type: webhook, carries: [webhook], url: 'https://h.example/x?token=abc',"
     " signing_secret: {env: S}}",
     f"channels[0].url: the URL looks like it holds a secret; {HINT}"),
    ("{id: w, type: webhook, carries: [webhook], url: 'https://bob:pw@h.example/x',"
     " signing_secret: {env: S}}",
     f"channels[0].url: the URL holds a user name or password; {HINT}"),
    ("{id: o, type: opsgenie, carries: [opsgenie], api_key: {env: A, file: /k}}",
     "channels[0].api_key: give exactly one of 'env' or 'file'"),
    ("{id: e, type: email, carries: [email], host: smtp, sender: a@b.c, routing_key: {env: X}}",
     "channels[0]: 'routing_key' not used by channel type 'email' (it takes host, password, "
     "port, security, sender, username)"),
    ("{id: t, type: sms, carries: [sms], url: 'https://api.twilio.com', account: AC1}",
     "channels[0]: channel type 'sms' needs 'sender', 'token'"),
])  # fmt: skip
def test_secrets_and_fields_are_checked(channel: str, message: str) -> None:
    assert problems(f"  - {channel}\n") == [message]


def test_references_and_duplicates_are_checked() -> None:
    found = problems(
        "  - {id: s, type: slack, carries: [chat], webhook: {env: S},"
        " when: {teams: [opz], people: [bob], priorities: [P7]}}\n"
        "  - {id: s, type: slack, carries: [chat], webhook: {env: S}}\n"
    )
    assert found == [
        "channels[0].when.teams[0]: unknown team 'opz'; known: billing, ops",
        "channels[0].when.people[0]: unknown person 'bob'; known: ana",
        "channels[0].when.priorities[0]: unknown priority 'P7'; known: P1, P2",
        "channels[1].id: duplicate id 's' (first used at ch.yaml:7:5)",
    ]


def test_the_json_schema_has_channels_and_refuses_an_inline_secret() -> None:
    schema = jsonschema.Draft202012Validator(policy_json_schema())
    good = {"id": "x", "channels": [
        {"id": "p", "type": "pagerduty", "carries": ["pagerduty"], "routing_key": {"env": "K"}}
    ]}  # fmt: skip
    schema.validate(good)
    bad = {"id": "x", "channels": [
        {"id": "p", "type": "pagerduty", "carries": ["pagerduty"], "routing_key": "R0UT1NG"}
    ]}  # fmt: skip
    assert not schema.is_valid(bad)


POLICY = (
    HEAD
    + """\
  - {id: ops-chat, type: slack, carries: [chat], when: {teams: [ops]}, webhook: {env: OPS_URL}}
  - {id: p1-chat, type: slack, carries: [chat], when: {priorities: [P1]}, webhook: {env: P1_URL}}
  - {id: customers, type: webhook, carries: [email], when: {audiences: [customer]},
     url: 'http://127.0.0.1:9/x', signing_secret: {file: /nonexistent/escalade-test-secret}}
"""
)


def _message(channel: str, team: str, priority: str, audience: str = "internal") -> OutboxMessage:
    return OutboxMessage(
        id=1, key="k", escalation_id=1, channel=channel, recipient="ana", audience=audience,
        template=None, payload={"escalation": {"team": team, "priority": priority}},
    )  # fmt: skip


def test_instances_are_chosen_by_team_priority_and_audience() -> None:
    policy = policy_from_text(POLICY, "ch.yaml")
    env = {"OPS_URL": "http://127.0.0.1:9/a", "P1_URL": "http://127.0.0.1:9/b"}
    with pytest.raises(ChannelSetupError, match=r"channel 'customers' \(webhook\): cannot read"):
        policy_channels(policy, environ=env)
    fallback = CapturingChannel()
    channels = policy_channels(policy, environ=env, strict=False, fallback=fallback)
    assert [p.split(":")[0] for p in channels.problems] == ["channel 'customers' (webhook)"]
    assert channels.route(_message("chat", "ops", "P2"))[0] == "ops-chat"
    assert channels.route(_message("chat", "billing", "P1"))[0] == "p1-chat"
    with pytest.raises(NoChannel, match="no channel instance carries 'chat' to 'ana'"):
        channels.route(_message("chat", "billing", "P2"))
    # email: its only instance could not be built, so email is logged by the fallback
    assert channels.route(_message("email", "ops", "P1", "customer"))[0] == "log"
    with pytest.raises(ChannelSetupError, match="environment variable P1_URL is not set"):
        policy_channels(policy, environ={"OPS_URL": "x"}, fallback=fallback)


def test_a_stored_policy_with_channels_loads_again() -> None:
    """Policy versions are stored as JSON with every default written out."""
    from escalade.policy.models import Policy

    policy = policy_from_text(POLICY, "ch.yaml")
    assert Policy.model_validate_json(policy.model_dump_json(by_alias=True)) == policy
