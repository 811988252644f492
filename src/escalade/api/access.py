"""People, keys, teams and sessions over HTTP.

``/v1/keys`` and ``/v1/users`` are for admins (a key's secret is in the answer to its
creation only); ``/v1/teams`` lists the active policy's teams; ``/v1/session`` signs a
person in with a password (a browser session with a CSRF token), says who is signed in,
and signs out. Sign-in is rate limited per address and per account."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from escalade.api.errors import CONFLICT, INTAKE, NOT_FOUND, PROTECTED, ApiError, _doc
from escalade.api.security import Gate, address
from escalade.auth import audit
from escalade.auth.credentials import hash_password, verify_password
from escalade.auth.provision import (
    Conflict,
    NoSuchKey,
    NoSuchUser,
    ProvisionError,
    create_key,
    create_user,
    disable_user,
    enable_user,
    key_view,
    revoke_key,
    user_view,
)
from escalade.auth.scopes import Principal, Scope, user_principal
from escalade.policy import Policy


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(min_length=1, max_length=4, description="read, write, intake, admin")
    teams: list[str] = Field(default_factory=list, max_length=100)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    role: str = Field(description="admin, lead, responder or viewer", max_length=40)
    teams: list[str] = Field(default_factory=list, max_length=100)
    person: str | None = Field(None, max_length=80, description="The policy person they are")
    password: str | None = Field(None, min_length=12, max_length=1000)


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000)


def principal_view(who: Principal) -> dict[str, Any]:
    return {
        "kind": who.kind,
        "name": who.name,
        "scopes": sorted(who.scopes),
        "teams": sorted(who.teams),
        "lead_of": sorted(who.lead_of),
        "roles": sorted(who.roles),
        "limited_to": sorted(who.limited_to) if who.limited_to is not None else None,
    }


def access_router(gate: Gate, policy: Callable[[], Policy]) -> APIRouter:
    api = APIRouter(prefix="/v1", responses=PROTECTED)
    admin = Depends(gate.require(Scope.admin))
    reader = Depends(gate.require(Scope.read))

    def _provisioned(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Conflict as exc:
            raise ApiError(409, str(exc), "conflict", loc=["body", "name"]) from None
        except (NoSuchKey, NoSuchUser) as exc:
            raise ApiError(404, str(exc), "not_found", loc=["path"]) from None
        except ProvisionError as exc:
            raise ApiError(422, str(exc), "value_error", loc=["body"]) from None

    @api.get("/keys", tags=["keys"])
    def list_keys(who: Principal = admin) -> list[dict[str, Any]]:
        """Every API key (never a secret): scopes, teams, last use, revocation."""
        with gate.store.unit_of_work(readonly=True) as uow:
            return [key_view(k) for k in uow.api_keys.list_all()]

    @api.post("/keys", tags=["keys"], status_code=201, responses=CONFLICT)
    def new_key(body: KeyIn, request: Request, who: Principal = admin) -> dict[str, Any]:
        """Create a key. Its ``secret`` is in this answer only: only a hash is stored."""
        secret, row = _provisioned(
            lambda: create_key(
                gate.store,
                name=body.name,
                scopes=body.scopes,
                teams=body.teams,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                address=address(request),
            )
        )
        return {**key_view(row), "secret": secret}

    @api.delete("/keys/{name}", tags=["keys"], responses=NOT_FOUND)
    def revoke(name: str, request: Request, who: Principal = admin) -> dict[str, Any]:
        """Revoke a key: refused from the next request on."""
        row = _provisioned(
            lambda: revoke_key(
                gate.store,
                name=name,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                address=address(request),
            )
        )
        return key_view(row)

    @api.get("/users", tags=["users"])
    def list_users(who: Principal = admin) -> list[dict[str, Any]]:
        """Every user (never a password hash)."""
        with gate.store.unit_of_work(readonly=True) as uow:
            return [user_view(u) for u in uow.users.list_all()]

    @api.post("/users", tags=["users"], status_code=201, responses=CONFLICT)
    def new_user(body: UserIn, request: Request, who: Principal = admin) -> dict[str, Any]:
        """Add a user (with a password, or to sign in through single sign-on only)."""
        row = _provisioned(
            lambda: create_user(
                gate.store,
                email=body.email,
                role=body.role,
                teams=body.teams,
                password=body.password,
                person=body.person,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                address=address(request),
            )
        )
        return user_view(row)

    @api.post("/users/{email}/disable", tags=["users"], responses=NOT_FOUND)
    def disable(email: str, request: Request, who: Principal = admin) -> dict[str, Any]:
        """Disable a user: their sessions end at their next request; no sign-in."""
        row = _provisioned(
            lambda: disable_user(
                gate.store,
                email=email,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                address=address(request),
            )
        )
        return user_view(row)

    @api.post("/users/{email}/enable", tags=["users"], responses=NOT_FOUND)
    def enable(email: str, request: Request, who: Principal = admin) -> dict[str, Any]:
        """Enable a disabled user again."""
        row = _provisioned(
            lambda: enable_user(
                gate.store,
                email=email,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                address=address(request),
            )
        )
        return user_view(row)

    @api.get("/teams", tags=["teams"])
    def teams(who: Principal = reader) -> list[dict[str, Any]]:
        """The active policy's teams: level, lead(s) and members (policy person ids)."""
        return [
            {
                "id": t.id,
                "name": t.name,
                "level": t.level,
                "leads": t.leads(),
                "members": [m.person for m in t.members],
            }
            for t in policy().teams
        ]

    @api.get("/session", tags=["session"])
    def whoami(request: Request) -> dict[str, Any]:
        """Who this request acts as (a key or a signed-in person), and with what scopes."""
        who = gate.authenticate(request)
        return principal_view(who)

    @api.post(
        "/session",
        tags=["session"],
        responses={**INTAKE, 401: _doc("Wrong e-mail address or password")},
    )
    def sign_in(body: SignIn, request: Request) -> dict[str, Any]:
        """Sign in with a password: a session cookie, and the CSRF token that changing
        requests of this session must send in ``X-CSRF-Token``."""
        email = body.email.strip().lower()
        gate.limit(request, "signin_address", address(request) or "?", None)
        gate.limit(request, "signin_account", email, None)
        with gate.store.unit_of_work(readonly=True) as uow:
            user = uow.users.get_by_email(email)
        ok = user is not None and user.disabled_at is None
        # verify even for an unknown user, so that timing does not tell who exists
        good = verify_password(user.password_hash if user else _dummy(), body.password) and ok
        if not good or user is None:
            raise gate.refuse(request, 401, "wrong e-mail address or password", "unauthenticated")
        csrf = secrets.token_urlsafe(32)
        request.session.clear()
        request.session.update({"user": user.email, "csrf": csrf, "via": "password"})
        who = user_principal(user.email, user.role, user.teams, person=user.person, policy=policy())
        with gate.store.unit_of_work() as uow:
            audit.record(
                uow,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind="user",
                action="session.sign_in",
                target=f"user:{user.id}",
                address=address(request),
                detail="password",
            )
            uow.commit()
        return {**principal_view(who), "csrf_token": csrf}

    @api.delete("/session", tags=["session"])
    def sign_out(request: Request, who: Principal = reader) -> dict[str, Any]:
        """Sign out (a session needs its CSRF token for this too)."""
        request.session.clear()
        return {"signed_out": who.name}

    return api


@cache
def _dummy() -> str:
    """A real Argon2 hash to check unknown users against (same cost as a real one)."""
    return hash_password(secrets.token_urlsafe(16))
