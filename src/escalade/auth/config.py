"""Settings of sign-in, sessions and rate limits, read from the environment when the app
is built (never at import). docs/auth.md lists them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from escalade.auth.ratelimit import Limit
from escalade.auth.scopes import Role, parse_role


def _mapping(text: str, what: str, check: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        group, eq, value = part.partition("=")
        if not eq or not group.strip() or not value.strip():
            raise ValueError(f"{what}: '{part.strip()}' is not GROUP=VALUE")
        if check:
            parse_role(value)
        out[group.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    group_roles: Mapping[str, str]  # provider group → Escalade role
    group_teams: Mapping[str, str] = field(default_factory=dict)  # provider group → team
    groups_claim: str = "groups"
    scope: str = "openid email profile"

    def role_for(self, groups: list[str]) -> Role | None:
        """The strongest role any of the groups maps to; None if none does."""
        order = [Role.admin, Role.lead, Role.responder, Role.viewer]
        roles = {Role(self.group_roles[g]) for g in groups if g in self.group_roles}
        return next((r for r in order if r in roles), None)

    def teams_for(self, groups: list[str]) -> list[str]:
        return sorted({self.group_teams[g] for g in groups if g in self.group_teams})


INTAKE_PER_KEY = Limit(600, 600)
INTAKE_PER_ADDRESS = Limit(1200, 1200)
SIGNIN_PER_ADDRESS = Limit(10, 10)
SIGNIN_PER_ACCOUNT = Limit(5, 5)


@dataclass(frozen=True)
class AuthSettings:
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session_https_only: bool = False
    session_max_age: int = 8 * 3600
    intake_per_key: Limit = INTAKE_PER_KEY
    intake_per_address: Limit = INTAKE_PER_ADDRESS
    signin_per_address: Limit = SIGNIN_PER_ADDRESS
    signin_per_account: Limit = SIGNIN_PER_ACCOUNT
    oidc: OidcSettings | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthSettings:
        e = os.environ if env is None else env
        values: dict[str, object] = {}
        if e.get("ESCALADE_SESSION_SECRET"):
            values["session_secret"] = e["ESCALADE_SESSION_SECRET"]
        if e.get("ESCALADE_SESSION_HTTPS_ONLY"):
            values["session_https_only"] = e["ESCALADE_SESSION_HTTPS_ONLY"].lower() in (
                "1",
                "true",
                "yes",
            )
        for name, env_name in (
            ("intake_per_key", "ESCALADE_RATE_INTAKE_KEY"),
            ("intake_per_address", "ESCALADE_RATE_INTAKE_ADDRESS"),
            ("signin_per_address", "ESCALADE_RATE_SIGNIN_ADDRESS"),
            ("signin_per_account", "ESCALADE_RATE_SIGNIN_ACCOUNT"),
        ):
            if e.get(env_name):
                try:
                    values[name] = Limit.parse(e[env_name])
                except ValueError as exc:
                    raise ValueError(f"{env_name}: {exc}") from None
        issuer = e.get("ESCALADE_OIDC_ISSUER")
        if issuer:
            missing = [
                n
                for n in ("ESCALADE_OIDC_CLIENT_ID", "ESCALADE_OIDC_CLIENT_SECRET")
                if not e.get(n)
            ]
            if missing:
                raise ValueError(f"ESCALADE_OIDC_ISSUER is set but {', '.join(missing)} is not")
            values["oidc"] = OidcSettings(
                issuer=issuer,
                client_id=e["ESCALADE_OIDC_CLIENT_ID"],
                client_secret=e["ESCALADE_OIDC_CLIENT_SECRET"],
                group_roles=_mapping(
                    e.get("ESCALADE_OIDC_GROUP_ROLES", ""), "ESCALADE_OIDC_GROUP_ROLES", True
                ),
                group_teams=_mapping(
                    e.get("ESCALADE_OIDC_GROUP_TEAMS", ""), "ESCALADE_OIDC_GROUP_TEAMS", False
                ),
                groups_claim=e.get("ESCALADE_OIDC_GROUPS_CLAIM", "groups"),
            )
        return cls(**values)  # type: ignore[arg-type]
