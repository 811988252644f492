"""PagerDuty Events API v2: ``POST {url}/v2/enqueue`` with the integration's routing key.

A page is a ``trigger`` whose ``dedup_key`` is the outbox key, so a resend after a crash
is one incident. A message whose payload says ``event_action: acknowledge`` or
``resolve`` (with the ``dedup_key`` of the page it concerns) acknowledges or resolves
that incident, so a team that keeps its pager sees Escalade's acknowledgement there."""

from __future__ import annotations

from typing import Any

import httpx

from escalade.channels.base import content, post
from escalade.store import OutboxMessage

DEFAULT_URL = "https://events.pagerduty.com"
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")


def severity_for(priority: str | None, rank: dict[str, int]) -> str:
    """The most urgent priority is critical, the next error, then warning, then info."""
    if priority is None or priority not in rank:
        return "critical"
    return ("critical", "error", "warning", "info")[min(rank[priority], 3)]


class PagerDutyChannel:
    def __init__(
        self,
        *,
        routing_key: str,
        url: str | None = None,
        severity: str | None = None,
        priority_rank: dict[str, int] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.endpoint = (url or DEFAULT_URL).rstrip("/") + "/v2/enqueue"
        self.routing_key = routing_key
        self.severity = severity
        self.rank = priority_rank or {}
        self.client = httpx.Client(timeout=timeout)

    def event(self, message: OutboxMessage) -> dict[str, Any]:
        p = message.payload
        action = str(p.get("event_action") or "trigger")
        if action not in EVENT_ACTIONS:
            action = "trigger"
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": str(p.get("dedup_key") or message.key)[:255],
        }
        if action == "trigger":
            c = content(message)
            body["payload"] = {
                "summary": c.title[:1024],
                "source": "escalade",
                "severity": self.severity or severity_for(c.priority, self.rank),
                "custom_details": {**c.details, "text": c.text},
                **({"component": c.team} if c.team else {}),
            }
            body["links"] = [{"href": u, "text": a.capitalize()} for a, u in c.links.items()]
        return body

    def send(self, message: OutboxMessage) -> None:
        post(self.client, self.endpoint, provider="PagerDuty", json=self.event(message))
