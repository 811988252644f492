"""SMS and voice calls through a Twilio-style HTTP API: a form POST to
``{url}/2010-04-01/Accounts/{account}/Messages.json`` (SMS) or ``…/Calls.json`` (voice,
with inline TwiML that reads the message aloud), HTTP Basic auth with the account id and
its token. The base URL is set in the policy, so any provider with this API works.

Twilio's REST API has no idempotency key; the outbox key is sent as ``Idempotency-Key``
for providers that honour it, and the SMS text ends with the escalation's ref."""

from __future__ import annotations

from xml.sax.saxutils import escape

import httpx

from escalade.channels.base import address, content, post
from escalade.store import OutboxMessage

SMS_LIMIT = 1600


class TwilioChannel:
    """``kind`` is ``sms`` or ``voice``."""

    def __init__(
        self,
        *,
        kind: str,
        url: str,
        account: str,
        token: str,
        sender: str,
        timeout: float = 10.0,
    ) -> None:
        if kind not in ("sms", "voice"):
            raise ValueError(f"kind must be sms or voice, not {kind!r}")
        self.kind = kind
        resource = "Messages.json" if kind == "sms" else "Calls.json"
        self.endpoint = f"{url.rstrip('/')}/2010-04-01/Accounts/{account}/{resource}"
        self.auth = (account, token)
        self.sender = sender
        self.client = httpx.Client(timeout=timeout)

    def form(self, message: OutboxMessage) -> dict[str, str]:
        c = content(message)
        to = address(message, "phone")
        if self.kind == "sms":
            link = c.links.get("acknowledge")
            text = c.title + (f"\nAck: {link}" if link else "")
            return {"To": to, "From": self.sender, "Body": text[:SMS_LIMIT]}
        spoken = escape(f"Escalade. {c.title}. {c.text}")
        return {
            "To": to,
            "From": self.sender,
            "Twiml": f'<Response><Say voice="alice">{spoken}</Say></Response>',
        }

    def send(self, message: OutboxMessage) -> None:
        post(
            self.client,
            self.endpoint,
            provider=f"{self.kind} provider",
            data=self.form(message),
            auth=self.auth,
            headers={"Idempotency-Key": message.key},
        )
