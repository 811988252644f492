"""A generic JSON webhook, signed with HMAC-SHA256 over a timestamp and the body.

Each request carries::

    Content-Type: application/json
    Idempotency-Key: <the outbox key; the same on every retry of one message>
    Escalade-Timestamp: <Unix time in seconds when it was signed>
    Escalade-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

A receiver verifies it (``verify`` below does exactly this): read the raw body bytes,
recompute the HMAC over ``timestamp + "." + body`` with the shared secret, compare in
constant time with the ``v1=`` value, and refuse a timestamp more than five minutes from
its own clock (a replay). Then drop a request whose ``Idempotency-Key`` it has already
processed: after a crash between sending and recording, Escalade sends again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx

from escalade.channels.base import content, post
from escalade.clock import Clock, SystemClock
from escalade.store import OutboxMessage

TIMESTAMP_HEADER = "Escalade-Timestamp"
SIGNATURE_HEADER = "Escalade-Signature"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature_header: str,
    now: datetime | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """A receiver's check: the signature fits the body and the timestamp is recent
    (``now`` defaults to the wall clock)."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    current = (now or SystemClock().now()).timestamp()
    if abs(current - sent) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, s.strip()) for s in signature_header.split(","))


def document(message: OutboxMessage) -> dict[str, Any]:
    """The JSON body a webhook receives."""
    c = content(message)
    return {
        "key": message.key,
        "ref": c.ref,
        "channel": message.channel,
        "recipient": message.recipient,
        "audience": message.audience,
        "template": message.template,
        "title": c.title,
        "text": c.text,
        "priority": c.priority,
        "team": c.team,
        "links": c.links,
        "details": c.details,
    }


class WebhookChannel:
    """POSTs a signed JSON document to one URL."""

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.clock = clock or SystemClock()
        self.client = httpx.Client(timeout=timeout)

    def send(self, message: OutboxMessage) -> None:
        body = json.dumps(document(message), separators=(",", ":")).encode()
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self.secret, timestamp, body),
        }
        post(self.client, self.url, provider=f"webhook {self.url}", content=body, headers=headers)
