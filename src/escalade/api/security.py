"""Authentication and authorization for requests: FastAPI dependencies over
``escalade.auth``'s pure decisions.

A request authenticates with ``Authorization: Bearer KEY`` (an API key) or with a browser
session cookie (after signing in with a password or through OpenID Connect; changing
requests then need the session's CSRF token in ``X-CSRF-Token``). ``Gate.require(scope)``
is the dependency that lets a request through or answers 401 (who are you?) or 403 (not
with this scope); every refusal is written to the audit log with the address it came
from. A key's last use is recorded at most once a minute.

While the database cannot be reached, a key this process saw valid within the last
``OUTAGE_GRACE`` is still recognised, so that what needs no database (``/v1/route``, the
policy) keeps working; anything else answers 503 then anyway. Unknown keys, revoked ones
and sessions are not: they answer 503 (``store/availability.py``).
"""

from __future__ import annotations

import base64
import hmac
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request

from escalade.api.errors import ApiError
from escalade.auth import audit
from escalade.auth.config import AuthSettings
from escalade.auth.credentials import hash_api_key
from escalade.auth.ratelimit import RateLimiter
from escalade.auth.scopes import Principal, Scope, key_principal, user_principal
from escalade.clock import Clock
from escalade.policy import Policy
from escalade.store import Store
from escalade.store.availability import database_outage

log = logging.getLogger("escalade.api")

TOUCH_EVERY = timedelta(minutes=1)
OUTAGE_GRACE = timedelta(minutes=5)
FLOOD_AUDIT_EVERY = timedelta(minutes=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


def _basic_password(token: str) -> str:
    """The password of a basic credential (``user:password``, base64), or '' if unreadable
    (an unknown key then: 401)."""
    try:
        return base64.b64decode(token, validate=True).decode().partition(":")[2]
    except (ValueError, UnicodeDecodeError):
        return ""


def address(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass
class Gate:
    """What the dependencies need: the store (keys, users, audit), the clock, the active
    policy (for people's policy roles and teams), settings and the rate limiters."""

    store: Store
    clock: Clock
    policy: Callable[[], Policy]
    settings: AuthSettings
    limiters: dict[str, RateLimiter] = field(default_factory=dict)
    # when a refusal for too many requests was last audited, per limiter and key: a flood
    # writes one audit entry a minute, not one per request
    _flood_audited: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # key hash -> (when the database last said it is valid, what it allows); consulted
    # only while the database cannot be reached
    _seen_valid: dict[str, tuple[datetime, Principal]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.settings
        self.limiters = {
            "intake_key": RateLimiter(s.intake_per_key),
            "intake_address": RateLimiter(s.intake_per_address),
            "signin_address": RateLimiter(s.signin_per_address),
            "signin_account": RateLimiter(s.signin_per_account),
        }

    # ------------------------------------------------------------------ refusals

    def refuse(
        self,
        request: Request,
        status: int,
        msg: str,
        kind: str,
        who: Principal | None = None,
        *,
        loc: list[str] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> ApiError:
        """Record a refused attempt in the audit log and build its answer."""
        audit.refusal(
            self.store,
            at=self.clock.now(),
            who=who,
            action=f"{request.method} {request.url.path}",
            target=request.url.path,
            address=address(request),
            detail=f"{status} {kind}: {msg}",
        )
        return ApiError(status, msg, kind, loc=loc, headers=headers, **extra)

    def limit(self, request: Request, limiter: str, key: str, who: Principal | None) -> None:
        now = self.clock.now()
        wait = self.limiters[limiter].check(key, now)
        if wait is None:
            return
        seconds = max(1, math.ceil(wait))
        msg = f"too many requests; try again in {seconds} s"
        headers = {"Retry-After": str(seconds)}
        last = self._flood_audited.get((limiter, key))
        if last is not None and now - last < FLOOD_AUDIT_EVERY:
            raise ApiError(429, msg, "rate_limited", headers=headers)
        if len(self._flood_audited) > 10_000:
            self._flood_audited.clear()
        self._flood_audited[limiter, key] = now
        raise self.refuse(request, 429, msg, "rate_limited", who, headers=headers)

    # ------------------------------------------------------------------ who is it

    def authenticate(self, request: Request, *, basic: bool = False) -> Principal:
        """The caller, by ``Authorization: Bearer KEY`` or a session; with ``basic``
        (intake endpoints, for senders such as Prometheus that can only send basic auth)
        also ``Authorization: Basic`` whose password is the key (any user name)."""
        header = request.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if basic and scheme.lower() == "basic":
                return self._by_key(request, _basic_password(token.strip()))
            if scheme.lower() != "bearer" or not token.strip():
                raise self.refuse(
                    request,
                    401,
                    "use 'Authorization: Bearer KEY'",
                    "unauthenticated",
                    loc=["header", "authorization"],
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return self._by_key(request, token.strip())
        session = request.scope.get("session")
        if session and session.get("user"):
            return self._by_session(request, session)
        raise self.refuse(
            request,
            401,
            "authentication required: send 'Authorization: Bearer KEY' or sign in",
            "unauthenticated",
            loc=["header", "authorization"],
            headers={"WWW-Authenticate": "Bearer"},
        )

    def _by_key(self, request: Request, secret: str) -> Principal:
        digest = hash_api_key(secret)
        now = self.clock.now()
        try:
            with self.store.unit_of_work(readonly=True) as uow:
                row = uow.api_keys.by_hash(digest)
        except Exception as exc:
            seen = self._seen_valid.get(digest)
            if database_outage(exc) is None or seen is None or now - seen[0] > OUTAGE_GRACE:
                raise
            return seen[1]
        if row is None or row.revoked_at is not None:
            self._seen_valid.pop(digest, None)
            why = "unknown API key" if row is None else f"API key '{row.name}' was revoked"
            raise self.refuse(
                request,
                401,
                why,
                "unauthenticated",
                loc=["header", "authorization"],
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
            try:
                with self.store.unit_of_work() as uow:
                    uow.api_keys.touch(row.id, at=now)
                    uow.commit()
            except Exception as exc:  # the last use is a hint: not worth refusing over
                if database_outage(exc) is None:
                    raise
        who = key_principal(row.name, row.scopes, row.teams, self.policy())
        if len(self._seen_valid) > 10_000:
            self._seen_valid.clear()
        self._seen_valid[digest] = (now, who)
        return who

    def _by_session(self, request: Request, session: dict[str, Any]) -> Principal:
        with self.store.unit_of_work(readonly=True) as uow:
            user = uow.users.get_by_email(str(session["user"]))
        if user is None or user.disabled_at is not None:
            session.clear()
            raise self.refuse(
                request,
                401,
                "your session ended: sign in again",
                "unauthenticated",
                loc=["cookie", "session"],
            )
        who = user_principal(
            user.email, user.role, user.teams, person=user.person, policy=self.policy()
        )
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            expected = str(session.get("csrf", ""))
            if not expected or not hmac.compare_digest(sent, expected):
                raise self.refuse(
                    request,
                    403,
                    "missing or wrong CSRF token: send the session's csrf_token in X-CSRF-Token",
                    "csrf",
                    who,
                    loc=["header", "x-csrf-token"],
                )
        return who

    # ------------------------------------------------------------------ dependencies

    def by_key(self, request: Request, secret: str, scope: Scope) -> Principal:
        """The holder of the key ``secret`` given in the body (PagerDuty's ``routing_key``),
        with the same rate limits, scope check and audit of refusals as ``require``."""
        if scope is Scope.intake:
            self.limit(request, "intake_address", address(request) or "?", None)
        return self._admit(request, self._by_key(request, secret), scope)

    def require(self, scope: Scope) -> Callable[[Request], Principal]:
        """A dependency: the principal, if it holds ``scope`` (admin holds every one).
        Intake also takes ``Authorization: Basic`` with the key as password."""

        def dependency(request: Request) -> Principal:
            if scope is Scope.intake:
                self.limit(request, "intake_address", address(request) or "?", None)
            who = self.authenticate(request, basic=scope is Scope.intake)
            return self._admit(request, who, scope)

        dependency.__name__ = f"require_{scope.value}"
        return dependency

    def _admit(self, request: Request, who: Principal, scope: Scope) -> Principal:
        """Let ``who`` through if it holds ``scope`` (then rate-limit intake), else 403."""
        if not who.has(scope):
            raise self.refuse(
                request,
                403,
                f"this needs the '{scope.value}' scope; "
                f"{who.actor} has {', '.join(sorted(who.scopes)) or 'none'}",
                "forbidden",
                who,
                loc=["header", "authorization"],
                needed=scope.value,
            )
        if scope is Scope.intake:
            self.limit(request, "intake_key", who.actor, who)
        request.state.principal = who
        return who
