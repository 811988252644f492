"""Single sign-on with OpenID Connect (Authlib): ``/auth/oidc/login`` sends the browser to
the identity provider; ``/auth/oidc/callback`` takes the answer, checks the ID token, and
maps the provider's groups to an Escalade role (``ESCALADE_OIDC_GROUP_ROLES``; teams from
``ESCALADE_OIDC_GROUP_TEAMS``). Someone whose groups map to no role gets nothing: no
session and no user. Otherwise the user is created or brought up to date (the provider
is the authority on role and teams) and a session starts, with its CSRF token.
Both endpoints are rate limited per address; every refusal is audited."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from escalade.api.errors import INTAKE, _doc
from escalade.api.security import Gate, address
from escalade.auth import audit
from escalade.auth.config import OidcSettings
from escalade.auth.scopes import user_principal
from escalade.policy import Policy

PROVIDER = "escalade_sso"


def _groups(claims: dict[str, Any], claim: str) -> list[str]:
    value = claims.get(claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def oidc_router(gate: Gate, settings: OidcSettings, policy: Callable[[], Policy]) -> APIRouter:
    oauth = OAuth()
    oauth.register(
        PROVIDER,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=settings.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings.scope},
    )
    client = oauth.create_client(PROVIDER)
    api = APIRouter(prefix="/auth/oidc", tags=["session"])

    @api.get(
        "/login",
        response_class=RedirectResponse,
        status_code=302,
        responses={429: INTAKE[429], 302: {"description": "To the identity provider"}},
    )
    async def oidc_login(request: Request) -> Any:
        """Start signing in with the identity provider."""
        gate.limit(request, "signin_address", address(request) or "?", None)
        redirect_uri = str(request.url_for("oidc_callback"))
        return await client.authorize_redirect(request, redirect_uri)

    @api.get(
        "/callback",
        name="oidc_callback",
        responses={
            401: _doc("The provider's answer was refused"),
            403: _doc("Signed in, but your groups map to no Escalade role"),
            429: INTAKE[429],
        },
    )
    async def oidc_callback(request: Request) -> dict[str, Any]:
        """Where the identity provider sends the browser back."""
        gate.limit(request, "signin_address", address(request) or "?", None)
        try:
            token = await client.authorize_access_token(request)
        except OAuthError as exc:
            raise gate.refuse(
                request, 401, f"sign-in refused: {exc.error}", "unauthenticated"
            ) from None
        claims: dict[str, Any] = dict(token.get("userinfo") or {})
        email = str(claims.get("email") or "").strip().lower()
        if not email:
            raise gate.refuse(
                request, 401, "the identity provider gave no e-mail address", "unauthenticated"
            )
        groups = _groups(claims, settings.groups_claim)
        role = settings.role_for(groups)
        if role is None:
            request.session.clear()
            raise gate.refuse(
                request,
                403,
                "signed in, but none of your groups maps to an Escalade role: ask an admin",
                "no_role",
            )
        teams = settings.teams_for(groups)
        now = gate.clock.now()
        with gate.store.unit_of_work() as uow:
            user = uow.users.get_by_email(email)
            if user is None:
                user = uow.users.add(email=email, role=role.value, teams=teams, at=now)
                assert user is not None
                audit.record(
                    uow,
                    at=now,
                    actor=email,
                    actor_kind="user",
                    action="user.create",
                    target=f"user:{user.id}",
                    address=address(request),
                    after={"role": role.value, "teams": teams},
                    detail="single sign-on",
                )
            elif (user.role, user.teams) != (role.value, teams):
                before = {"role": user.role, "teams": user.teams}
                changed = uow.users.update(email, role=role.value, teams=teams)
                assert changed is not None
                user = changed
                audit.record(
                    uow,
                    at=now,
                    actor=email,
                    actor_kind="user",
                    action="user.update",
                    target=f"user:{user.id}",
                    address=address(request),
                    before=before,
                    after={"role": role.value, "teams": teams},
                    detail="single sign-on: groups changed",
                )
            if user.disabled_at is not None:
                uow.commit()
                raise gate.refuse(request, 403, "this user is disabled", "disabled")
            audit.record(
                uow,
                at=now,
                actor=email,
                actor_kind="user",
                action="session.sign_in",
                target=f"user:{user.id}",
                address=address(request),
                detail="single sign-on",
            )
            uow.commit()
        csrf = secrets.token_urlsafe(32)
        request.session.clear()
        request.session.update({"user": email, "csrf": csrf, "via": "oidc"})
        who = user_principal(email, user.role, user.teams, person=user.person, policy=policy())
        return {
            "signed_in": who.name,
            "role": user.role,
            "teams": user.teams,
            "scopes": sorted(who.scopes),
            "csrf_token": csrf,
        }

    return api
