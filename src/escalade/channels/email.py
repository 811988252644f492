"""Email over SMTP: STARTTLS (port 587), SMTPS (``security: ssl``, port 465) or plain to a
local relay. The outbox key becomes the ``Message-ID``, so a resent message after a crash
is recognisably the same one."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from escalade.channels.base import DeliveryError, address, content
from escalade.store import OutboxMessage


def message_id(key: str, domain: str) -> str:
    """A stable Message-ID for an outbox key."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class EmailChannel:
    """Sends each message as one email through an SMTP server."""

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.security = security
        self.port = port or (465 if security == "ssl" else 587 if security == "starttls" else 25)
        self.sender = sender
        self.username = username
        self.password = password
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context()

    def build(self, message: OutboxMessage) -> EmailMessage:
        c = content(message)
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = address(message, "email")
        mail["Subject"] = c.title
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = message_id(message.key, self.sender.rpartition("@")[2] or "escalade")
        mail["X-Escalade-Ref"] = c.ref
        mail["X-Escalade-Key"] = message.key
        mail.set_content(c.plain())
        return mail

    def send(self, message: OutboxMessage) -> None:
        mail = self.build(message)
        try:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.tls_context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self.tls_context)
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error
            text = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
            raise DeliveryError(f"SMTP {self.host} answered {exc.smtp_code}: {text}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"SMTP {self.host} refused the recipient: {exc.recipients}"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {self.host}: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise DeliveryError(f"SMTP {self.host} refused: {refused}")
