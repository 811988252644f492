"""Every channel type delivers through the whole engine to a real receiver on loopback
(an aiosmtpd SMTP server, local HTTP servers), and the test reads back what arrived."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from tests.channels.receivers import HttpReceiver, MailBox, free_port

from escalade.channels.links import ActionLinks
from escalade.channels.router import policy_channels
from escalade.channels.webhook import verify
from escalade.clock import VirtualClock
from escalade.engine import CapturingChannel
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.service.wiring import escalation_engine
from escalade.store import Store
from escalade.store.memory import MemoryStore

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
KEY = b"channel-tests-secret-key-0123456789"

BASE = """
id: reach
people:
  - {id: ana, contacts: {email: ana@example.com, sms: "+15550001"}}
  - {id: bo, contacts: {email: bo@example.com, phone: "+15550002"}}
teams: [{id: ops, contacts: {email: ops@example.com}}]
priorities: [{id: P1, ladder: page, notify: queue}, {id: P2}]
ladders:
  - id: page
    steps:
      - {after: 0s, notify: [{person: %(who)s}], channel: %(channel)s, unless: []}
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
channels:
%(channels)s
"""


def deliver(
    channels_yaml: str,
    channel: str,
    env: Mapping[str, str],
    who: str = "ana",
    store: Store | None = None,
) -> tuple[EscalationService, CapturingChannel]:
    """Apply a policy whose ladder pages ``who`` on ``channel`` at once, raise one
    escalation and run the engine until nothing is due."""
    text = BASE % {"who": who, "channel": channel, "channels": channels_yaml}
    policy = policy_from_text(text, "reach.yaml")
    store = store or MemoryStore()
    clock = VirtualClock(T0)
    service = EscalationService(store, clock)
    service.apply_policy(policy)
    fallback = CapturingChannel()  # the team's email notice, unless email is configured
    channels = policy_channels(
        policy, fallback=fallback, links=ActionLinks(KEY, "https://esc.example"), environ=env
    )
    engine = escalation_engine(service, channels)
    service.create(EscalationInput(subject="Checkout down"), ref="OUT-1")
    engine.run_until_idle(T0)
    return service, fallback


def events(service: EscalationService, ref: str = "OUT-1") -> list[tuple[str, str]]:
    with service.store.unit_of_work() as uow:
        esc = uow.escalations.get_by_ref(ref)
        assert esc is not None
        return [(d.event.value, d.channel) for d in uow.deliveries.for_escalation(esc.id)]


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("nothing arrived in time")


def test_email_arrives_at_a_real_smtp_server(smtp: tuple[Controller, MailBox]) -> None:
    controller, box = smtp
    channels = f"""
  - {{id: mail, type: email, carries: [email], host: 127.0.0.1, port: {controller.port},
     security: none, sender: escalade@example.com}}
"""
    service, _ = deliver(channels, "email", {})
    by_to = {m["To"]: m for m in box.mails}
    assert set(by_to) == {"ana@example.com", "ops@example.com"}  # the page and the notice
    page = by_to["ana@example.com"]
    assert page["From"] == "escalade@example.com"
    assert page["Subject"] == "[P1] OUT-1: Checkout down"
    assert page["Message-ID"].endswith("@example.com>") and page["X-Escalade-Ref"] == "OUT-1"
    body = page.get_payload()
    assert "Acknowledge: https://esc.example/v1/act/" in body
    assert ("sent", "email") in events(service)


def test_slack_gets_block_kit_with_action_buttons(receiver: HttpReceiver) -> None:
    channels = "  - {id: slack, type: slack, carries: [chat], webhook: {env: SLACK_URL}}"
    service, _ = deliver(channels, "chat", {"SLACK_URL": f"{receiver.url}/services/T/B/X"})
    [req] = receiver.requests
    assert req.path == "/services/T/B/X"
    doc = req.json()
    assert doc["text"] == "[P1] OUT-1: Checkout down"
    kinds = [b["type"] for b in doc["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]
    buttons = doc["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Acknowledge", "Resolve", "Escalate"]
    assert all(b["url"].startswith("https://esc.example/v1/act/") for b in buttons)
    assert ("sent", "chat") in events(service)


def test_teams_gets_an_adaptive_card(receiver: HttpReceiver) -> None:
    receiver.status = 202
    channels = "  - {id: teams, type: teams, carries: [chat], webhook: {file: %s}}"
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".url", delete=False) as f:
        f.write(f"{receiver.url}/workflows/abc\n")
    deliver(channels % f.name, "chat", {})
    [req] = receiver.requests
    doc = req.json()
    assert doc["type"] == "message"
    card = doc["attachments"][0]["content"]
    assert doc["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"] == "[P1] OUT-1: Checkout down"
    assert [a["title"] for a in card["actions"]] == ["Acknowledge", "Resolve", "Escalate"]
    assert {a["type"] for a in card["actions"]} == {"Action.OpenUrl"}


def test_webhook_is_signed_and_carries_the_idempotency_key(receiver: HttpReceiver) -> None:
    channels = f"""
  - {{id: hook, type: webhook, carries: [webhook], url: "{receiver.url}/hook",
     signing_secret: {{env: HOOK_SECRET}}}}
"""
    deliver(channels, "webhook", {"HOOK_SECRET": "s3cret"})
    [req] = receiver.requests
    h = {k.lower(): v for k, v in req.headers.items()}
    assert h["idempotency-key"].startswith("esc:1:ladder:")
    assert verify(
        "s3cret",
        timestamp=h["escalade-timestamp"],
        body=req.body,
        signature_header=h["escalade-signature"],
    )
    assert not verify(
        "wrong",
        timestamp=h["escalade-timestamp"],
        body=req.body,
        signature_header=h["escalade-signature"],
    )
    assert not verify(
        "s3cret",
        timestamp=h["escalade-timestamp"],
        body=req.body + b" ",
        signature_header=h["escalade-signature"],
    )
    doc = req.json()
    assert (
        doc["ref"] == "OUT-1" and doc["recipient"] == "ana" and doc["key"] == h["idempotency-key"]
    )
    assert set(doc["links"]) == {"acknowledge", "resolve", "escalate"}


def test_pagerduty_event_uses_the_outbox_key_as_dedup_key(receiver: HttpReceiver) -> None:
    receiver.status, receiver.reply = 202, b'{"status":"success","dedup_key":"x"}'
    channels = f"""
  - {{id: pd, type: pagerduty, carries: [pagerduty], url: "{receiver.url}",
     routing_key: {{env: PD_KEY}}}}
"""
    deliver(channels, "pagerduty", {"PD_KEY": "R0UTINGKEY"})
    [req] = receiver.requests
    assert req.path == "/v2/enqueue"
    doc = req.json()
    assert doc["routing_key"] == "R0UTINGKEY" and doc["event_action"] == "trigger"
    assert doc["dedup_key"].startswith("esc:1:ladder:")
    assert doc["payload"]["severity"] == "critical"
    assert doc["payload"]["summary"] == "[P1] OUT-1: Checkout down"
    assert [link["text"] for link in doc["links"]] == ["Acknowledge", "Resolve", "Escalate"]


def test_opsgenie_alert_uses_the_outbox_key_as_alias(receiver: HttpReceiver) -> None:
    receiver.status = 202
    channels = f"""
  - {{id: og, type: opsgenie, carries: [opsgenie], url: "{receiver.url}",
     api_key: {{env: OG_KEY}}}}
"""
    deliver(channels, "opsgenie", {"OG_KEY": "genie"})
    [req] = receiver.requests
    assert req.path == "/v2/alerts"
    assert req.headers["Authorization"] == "GenieKey genie"
    doc = req.json()
    assert doc["alias"].startswith("esc:1:ladder:") and doc["priority"] == "P1"
    assert doc["message"] == "[P1] OUT-1: Checkout down"


@pytest.mark.parametrize(("kind", "channel", "who", "resource", "number"), [
    ("sms", "sms", "ana", "Messages.json", "+15550001"),
    ("voice", "phone", "bo", "Calls.json", "+15550002"),
])  # fmt: skip
def test_sms_and_voice_are_twilio_style_form_posts(
    receiver: HttpReceiver, kind: str, channel: str, who: str, resource: str, number: str
) -> None:
    receiver.status = 201
    channels = f"""
  - {{id: {kind}, type: {kind}, carries: [{channel}], url: "{receiver.url}", account: AC123,
     token: {{env: TW_TOKEN}}, sender: "+15559999"}}
"""
    deliver(channels, channel, {"TW_TOKEN": "tok"}, who=who)
    [req] = receiver.requests
    assert req.path == f"/2010-04-01/Accounts/AC123/{resource}"
    assert req.headers["Authorization"] == "Basic QUMxMjM6dG9r"  # AC123:tok
    form = req.form()
    assert form["To"] == number and form["From"] == "+15559999"
    if kind == "sms":
        assert form["Body"].startswith("[P1] OUT-1: Checkout down\nAck: https://esc.example/")
    else:
        assert form["Twiml"].startswith("<Response><Say") and "Checkout down" in form["Twiml"]


def test_apprise_url_reaches_a_json_receiver(receiver: HttpReceiver) -> None:
    host = receiver.url.removeprefix("http://")
    channels = "  - {id: other, type: apprise, carries: [chat], target: {env: APPRISE_URL}}"
    service, _ = deliver(channels, "chat", {"APPRISE_URL": f"json://{host}/apprise"})
    [req] = receiver.requests
    assert req.path == "/apprise"
    doc = req.json()
    assert doc["title"] == "[P1] OUT-1: Checkout down"
    assert "Acknowledge: https://esc.example/v1/act/" in doc["message"]
    assert ("sent", "chat") in events(service)


def test_smtp_starttls_and_smtps(tls_cert: tuple[object, object]) -> None:
    import ssl

    from escalade.channels.base import DeliveryError
    from escalade.channels.email import EmailChannel
    from escalade.store import OutboxMessage

    cert, key = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert), str(key))
    client_ctx = ssl.create_default_context(cafile=str(cert))
    message = OutboxMessage(
        id=1, key="k1", escalation_id=None, channel="email", recipient="ana@example.com",
        audience="internal", template=None, payload={"subject": "Hello", "body": "World"},
    )  # fmt: skip

    box = MailBox()
    starttls = Controller(
        box, hostname="127.0.0.1", port=free_port(), tls_context=server_ctx, require_starttls=True
    )
    starttls.start()
    try:
        EmailChannel(
            host="localhost", port=starttls.port, security="starttls",
            sender="e@example.com", tls_context=client_ctx,
        ).send(message)  # fmt: skip
        with pytest.raises(DeliveryError, match=r"SMTP 127.0.0.1 answered 530"):
            EmailChannel(
                host="127.0.0.1", port=starttls.port, security="none", sender="e@example.com"
            ).send(message)
    finally:
        starttls.stop()
    assert [m["Subject"] for m in box.mails] == ["Hello"]

    box2 = MailBox()
    smtps = Controller(box2, hostname="127.0.0.1", port=free_port(), ssl_context=server_ctx)
    smtps.start()
    try:
        EmailChannel(
            host="localhost", port=smtps.port, security="ssl",
            sender="e@example.com", tls_context=client_ctx,
        ).send(message)  # fmt: skip
    finally:
        smtps.stop()
    assert [m["To"] for m in box2.mails] == ["ana@example.com"]
