"""Everything else Apprise reaches (Mattermost, Discord, Telegram, ntfy, Matrix, …): one
channel that takes an Apprise URL, e.g. ``mmosts://host/token`` or ``ntfys://topic``."""

from __future__ import annotations

import apprise

from escalade.channels.base import DeliveryError, content
from escalade.store import OutboxMessage


class AppriseChannel:
    def __init__(self, *, target: str) -> None:
        self.apprise = apprise.Apprise()
        if not self.apprise.add(target):
            # the URL itself is a secret: name the scheme only
            scheme = target.split("://", 1)[0] if "://" in target else "?"
            raise ValueError(f"Apprise does not understand a URL of scheme '{scheme}://'")

    def send(self, message: OutboxMessage) -> None:
        c = content(message)
        with apprise.LogCapture(level=apprise.logging.WARNING) as output:
            ok = self.apprise.notify(title=c.title, body=c.plain())
        if not ok:
            said = output.getvalue().strip().replace("\n", "; ") if output else ""
            raise DeliveryError(f"Apprise could not deliver: {said[:500] or 'no detail'}")
