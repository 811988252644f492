"""What every channel shares: the words of a message, its action links, addresses, and
HTTP calls that raise with the provider's answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from escalade.engine.outbox import Undeliverable
from escalade.store import OutboxMessage

USER_AGENT = "escalade-notify/1"
ACTIONS = ("acknowledge", "resolve", "escalate")


class DeliveryError(Exception):
    """The provider refused or failed a message; the text is its answer."""


@dataclass(frozen=True)
class Content:
    """What a message says, whatever carries it."""

    title: str
    text: str
    ref: str
    priority: str | None = None
    team: str | None = None
    mention: str | None = None
    links: dict[str, str] = field(default_factory=dict)  # action -> confirm-page URL
    details: dict[str, Any] = field(default_factory=dict)

    def plain(self) -> str:
        """Title, text and links as plain text (email body, SMS, Apprise)."""
        lines = [self.title]
        if self.text and self.text != self.title:
            lines += ["", self.text]
        if self.links:
            lines.append("")
            lines += [f"{action.capitalize()}: {url}" for action, url in self.links.items()]
        return "\n".join(lines)


def content(message: OutboxMessage) -> Content:
    """The title and text of a message: its rendered template, else a page written from
    the escalation (ladder pages and team notices have no template of their own)."""
    p = message.payload
    esc: Mapping[str, Any] = p.get("escalation") or {}
    ref = str(p.get("ref") or esc.get("ref") or message.escalation_id or message.key)
    subject = str(esc.get("subject") or "")
    priority = esc.get("priority")
    title = str(p.get("subject") or "")
    if not title:
        head = f"[{priority}] " if priority else ""
        title = f"{head}{ref}: {subject}" if subject else f"{head}{ref}"
    text = str(p.get("body") or "")
    if not text:
        parts = []
        if p.get("step"):
            parts.append(f"Ladder {p.get('ladder')} step {p['step']}.")
        if p.get("cause"):
            parts.append(f"Escalated ({p['cause']}).")
        if p.get("note"):
            parts.append(str(p["note"]))
        if p.get("why"):
            parts.append(str(p["why"]))
        if esc.get("team"):
            parts.append(f"Team: {esc['team']}.")
        if esc.get("state"):
            parts.append(f"State: {esc['state']}.")
        text = " ".join(parts) or title
    details = {
        k: v
        for k, v in {
            "ref": ref,
            "priority": priority,
            "team": esc.get("team"),
            "state": esc.get("state"),
            "recipient": message.recipient,
            "via": p.get("via"),
            "step": p.get("step"),
        }.items()
        if v is not None
    }
    return Content(
        title=title,
        text=text,
        ref=ref,
        priority=priority,
        team=esc.get("team"),
        mention=p.get("mention"),
        links={a: u for a, u in (p.get("links") or {}).items() if a in ACTIONS},
        details=details,
    )


def address(message: OutboxMessage, kind: str) -> str:
    """The concrete address of a message's recipient for ``kind`` (``email`` or
    ``phone``): the recipient itself when it is one, else the person's or team's contact
    that ``prepare`` looked up. ``Undeliverable`` when there is none."""
    to = message.recipient
    if kind == "email" and "@" in to and not to.startswith("@"):
        return to
    if kind == "phone" and to.startswith("+") and to[1:].replace("-", "").isdigit():
        return to
    found = (message.payload.get("addresses") or {}).get(kind)
    if found:
        return str(found)
    raise Undeliverable(f"no {kind} address for '{to}' in the policy")


def post(
    client: httpx.Client,
    url: str,
    *,
    provider: str,
    ok: tuple[int, ...] = (200, 201, 202, 204),
    **kwargs: Any,
) -> httpx.Response:
    """POST and raise ``DeliveryError`` with the provider's status and answer."""
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    try:
        response = client.post(url, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{provider}: {type(exc).__name__}: {exc}") from exc
    if response.status_code not in ok:
        raise DeliveryError(
            f"{provider} answered {response.status_code}: {response.text[:500].strip()}"
        )
    return response
