"""Opsgenie Alert API: ``POST {url}/v2/alerts`` with ``Authorization: GenieKey …``.

The outbox key is the alert's ``alias``, Opsgenie's deduplication key. A message whose
payload says ``event_action: acknowledge`` or ``resolve`` (with the ``dedup_key`` of the
page) acknowledges or closes that alert by alias."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from escalade.channels.base import content, post
from escalade.store import OutboxMessage

DEFAULT_URL = "https://api.opsgenie.com"


def opsgenie_priority(priority: str | None, rank: dict[str, int]) -> str:
    if priority is None or priority not in rank:
        return "P1"
    return f"P{min(rank[priority], 4) + 1}"


class OpsgenieChannel:
    def __init__(
        self,
        *,
        api_key: str,
        url: str | None = None,
        priority_rank: dict[str, int] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base = (url or DEFAULT_URL).rstrip("/")
        self.api_key = api_key
        self.rank = priority_rank or {}
        self.client = httpx.Client(timeout=timeout)

    def alert(self, message: OutboxMessage) -> dict[str, Any]:
        c = content(message)
        return {
            "message": c.title[:130],
            "alias": message.key[:512],
            "description": c.plain()[:15000],
            "priority": opsgenie_priority(c.priority, self.rank),
            "source": "escalade",
            "details": {k: str(v) for k, v in c.details.items()},
            "tags": [t for t in ("escalade", c.team) if t],
        }

    def send(self, message: OutboxMessage) -> None:
        headers = {"Authorization": f"GenieKey {self.api_key}"}
        action = message.payload.get("event_action")
        if action in ("acknowledge", "resolve"):
            alias = quote(str(message.payload.get("dedup_key") or message.key), safe="")
            verb = "acknowledge" if action == "acknowledge" else "close"
            url = f"{self.base}/v2/alerts/{alias}/{verb}?identifierType=alias"
            body = {"source": "escalade", "note": content(message).title}
            post(self.client, url, provider="Opsgenie", json=body, headers=headers)
            return
        post(
            self.client,
            f"{self.base}/v2/alerts",
            provider="Opsgenie",
            json=self.alert(message),
            headers=headers,
        )
