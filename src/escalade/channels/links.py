"""Signed, expiring action links: acknowledge, resolve or escalate from an email, a chat
message or an SMS, without signing in.

A link is ``{public_url}/v1/act/{token}``. The token is ``<claims>.<mac>``: the claims
(base64url JSON: escalation ref, action, who it was sent to, expiry as Unix seconds) and
an HMAC-SHA256 of them under the server's secret key. Opening the link (``GET``) shows a
confirm page; only its form's ``POST`` acts, so mail scanners and link previews, which
fetch links, never acknowledge anything. Tampered tokens are refused with 403, expired
ones with 410, and both are recorded.

The secret key is ``$ESCALADE_SECRET_KEY``; else the file ``$ESCALADE_SECRET_KEY_FILE``;
else, on SQLite, a key generated once and kept in ``<database>.secret-key`` beside the
database file (mode 0600); elsewhere in ``./escalade-secret.key``. Every process that
sends or checks links (``serve``, each ``worker``) must see the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("escalade.channels.links")

ACTIONS = ("acknowledge", "resolve", "escalate")
DEFAULT_TTL = timedelta(hours=24)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class LinkRefused(Exception):
    """A link that must not act; ``status`` is the HTTP answer (403 or 410)."""

    status = 403


class LinkTampered(LinkRefused):
    status = 403


class LinkExpired(LinkRefused):
    status = 410

    def __init__(self, message: str, claims: ActionClaims) -> None:
        super().__init__(message)
        self.claims = claims


@dataclass(frozen=True)
class ActionClaims:
    ref: str
    action: str
    to: str  # the recipient the link was sent to: who acts when it is used
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ActionLinks:
    """Signs and checks action links with one secret key."""

    def __init__(
        self, key: bytes, public_url: str = DEFAULT_PUBLIC_URL, ttl: timedelta = DEFAULT_TTL
    ) -> None:
        if len(key) < 16:
            raise ValueError("the action-link secret key must be at least 16 bytes")
        self.key = key
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())

    def token(self, ref: str, action: str, to: str, now: datetime) -> str:
        if action not in ACTIONS:
            raise ValueError(f"no action link for '{action}'")
        expires = int((now + self.ttl).timestamp())
        claims = json.dumps({"r": ref, "a": action, "t": to, "e": expires}, separators=(",", ":"))
        body = _b64(claims.encode())
        return f"{body}.{self._mac(body)}"

    def url(self, ref: str, action: str, to: str, now: datetime) -> str:
        return f"{self.public_url}/v1/act/{self.token(ref, action, to, now)}"

    def links(self, ref: str, to: str, now: datetime) -> dict[str, str]:
        return {action: self.url(ref, action, to, now) for action in ACTIONS}

    def check(self, token: str, now: datetime) -> ActionClaims:
        """The claims of a valid token; ``LinkTampered`` or ``LinkExpired`` otherwise."""
        body, _, mac = token.partition(".")
        if not body or not mac or not hmac.compare_digest(self._mac(body), mac):
            raise LinkTampered("this link is not valid: it was changed or not made by Escalade")
        try:
            raw = json.loads(_unb64(body))
            claims = ActionClaims(
                ref=str(raw["r"]),
                action=str(raw["a"]),
                to=str(raw["t"]),
                expires=datetime.fromtimestamp(int(raw["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LinkTampered(f"this link is not valid: {exc}") from None
        if claims.action not in ACTIONS:
            raise LinkTampered(f"this link names no action Escalade takes ('{claims.action}')")
        if now >= claims.expires:
            when = claims.expires.isoformat().replace("+00:00", "Z")
            raise LinkExpired(f"this link expired at {when}; open the escalation instead", claims)
        return claims


def key_file_for(database_url: str) -> Path:
    """Where the generated key lives: beside a SQLite database, else the working dir."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).with_name(Path(url.database).name + ".secret-key")
    return Path("escalade-secret.key")


def load_secret_key(database_url: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The action-link key: environment, named file, or generated once and kept."""
    env = os.environ if environ is None else environ
    if env.get("ESCALADE_SECRET_KEY"):
        return env["ESCALADE_SECRET_KEY"].encode()
    named = env.get("ESCALADE_SECRET_KEY_FILE")
    path = Path(named) if named else key_file_for(database_url)
    if path.exists():
        return path.read_text().strip().encode()
    if named:
        raise FileNotFoundError(f"ESCALADE_SECRET_KEY_FILE names {path}, which does not exist")
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it a moment ago
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    log.warning("generated the action-link secret key in %s (keep it; share it with workers)", path)
    return key.encode()


def links_from_env(database_url: str, environ: Mapping[str, str] | None = None) -> ActionLinks:
    """``ActionLinks`` as ``serve`` and ``worker`` set them up: key as above, base URL
    ``$ESCALADE_PUBLIC_URL``, lifetime ``$ESCALADE_ACTION_LINK_TTL`` (e.g. ``12h``)."""
    from escalade.durations import parse_duration

    env = os.environ if environ is None else environ
    ttl = DEFAULT_TTL
    if env.get("ESCALADE_ACTION_LINK_TTL"):
        try:
            ttl = parse_duration(env["ESCALADE_ACTION_LINK_TTL"])
        except ValueError as exc:
            raise ValueError(f"ESCALADE_ACTION_LINK_TTL: {exc}") from None
    return ActionLinks(
        load_secret_key(database_url, env),
        env.get("ESCALADE_PUBLIC_URL", DEFAULT_PUBLIC_URL),
        ttl,
    )
