"""Slack incoming webhooks with a Block Kit message (slack-sdk's ``WebhookClient``).

The action links become buttons; a button opens the link's confirm page, whose POST is
the action (so a link preview or scanner never acts)."""

from __future__ import annotations

from typing import Any

from slack_sdk.webhook import WebhookClient

from escalade.channels.base import Content, DeliveryError, content
from escalade.store import OutboxMessage

_STYLE = {"acknowledge": "primary", "resolve": None, "escalate": "danger"}


def blocks(c: Content, interactive: bool = False) -> list[dict[str, Any]]:
    """The Block Kit blocks of a message. Buttons open the action link's confirm page;
    ``interactive`` buttons instead carry the link's token as their ``value`` and Slack
    posts the click to Escalade's interactivity endpoint, which acts at once."""
    text = c.text if not c.mention else f"{c.mention} {c.text}"
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": c.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
    ]
    facts = [f"*{k}*: {v}" for k, v in c.details.items() if k in ("priority", "team", "state")]
    if facts:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]})
    if c.links:
        buttons = []
        for action, url in c.links.items():
            button: dict[str, Any] = {
                "type": "button",
                "text": {"type": "plain_text", "text": action.capitalize()},
                "action_id": f"escalade-{action}",
            }
            if interactive:
                button["value"] = url.rsplit("/", 1)[-1]  # the signed token
            else:
                button["url"] = url
            if _STYLE.get(action):
                button["style"] = _STYLE[action]
            buttons.append(button)
        out.append({"type": "actions", "elements": buttons})
    return out


class SlackChannel:
    """Posts to one Slack incoming webhook."""

    def __init__(
        self, *, webhook_url: str, timeout: float = 10.0, interactive: bool = False
    ) -> None:
        self.client = WebhookClient(webhook_url, timeout=int(max(timeout, 1)))
        self.interactive = interactive

    def send(self, message: OutboxMessage) -> None:
        c = content(message)
        try:
            response = self.client.send(text=c.title, blocks=blocks(c, self.interactive))
        except OSError as exc:
            raise DeliveryError(f"Slack: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise DeliveryError(f"Slack answered {response.status_code}: {response.body[:500]}")
