"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is
received"), carrying an Adaptive Card. Action links are ``Action.OpenUrl`` buttons to the
confirm page."""

from __future__ import annotations

from typing import Any

import httpx

from escalade.channels.base import Content, content, post
from escalade.store import OutboxMessage


def card(c: Content) -> dict[str, Any]:
    """The Adaptive Card (schema 1.4) of a message."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": c.title, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": c.text, "wrap": True},
    ]
    facts = [{"title": k, "value": str(v)} for k, v in c.details.items()]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [
            {"type": "Action.OpenUrl", "title": action.capitalize(), "url": url}
            for action, url in c.links.items()
        ],
    }


def payload(c: Content) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(c),
            }
        ],
    }


class TeamsChannel:
    """Posts an Adaptive Card to one Teams Workflows webhook."""

    def __init__(self, *, webhook_url: str, timeout: float = 10.0) -> None:
        self.url = webhook_url
        self.client = httpx.Client(timeout=timeout)

    def send(self, message: OutboxMessage) -> None:
        post(self.client, self.url, provider="Teams", json=payload(content(message)))
