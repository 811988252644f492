"""Creating people and API keys, revoking keys: the one place that does it, for the CLI
(``escalade users`` / ``escalade keys``) and the API alike; every change is recorded in
the audit log in the same transaction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from escalade.auth import audit
from escalade.auth.credentials import hash_api_key, hash_password, new_api_key
from escalade.auth.scopes import Role, Scope, parse_role, parse_scopes
from escalade.store import Store
from escalade.store.rows import ApiKeyRow, UserRow

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,119}")
TEAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


class ProvisionError(ValueError):
    """Refused, with what is wrong, for a person."""


class Conflict(ProvisionError):
    """The e-mail address or key name is taken."""


class NoSuchKey(ProvisionError):
    pass


class NoSuchUser(ProvisionError):
    pass


def user_view(u: UserRow) -> dict[str, Any]:
    return {
        "email": u.email,
        "role": u.role,
        "teams": list(u.teams),
        "person": u.person,
        "created_at": u.created_at.isoformat().replace("+00:00", "Z"),
        "has_password": u.password_hash is not None,
        "disabled": u.disabled_at is not None,
    }


def key_view(k: ApiKeyRow) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat().replace("+00:00", "Z") if t else None

    return {
        "name": k.name,
        "scopes": list(k.scopes),
        "teams": list(k.teams),
        "created_by": k.created_by,
        "created_at": iso(k.created_at),
        "last_used_at": iso(k.last_used_at),
        "revoked_at": iso(k.revoked_at),
    }


def _teams(teams: Sequence[str]) -> list[str]:
    out: list[str] = []
    for team in teams:
        if not TEAM.fullmatch(team):
            raise ProvisionError(f"'{team}' is not a team id (letters, digits, _ . -)")
        if team not in out:
            out.append(team)
    return out


def create_user(
    store: Store,
    *,
    email: str,
    role: str,
    teams: Sequence[str] = (),
    password: str | None = None,
    person: str | None = None,
    at: datetime,
    actor: str,
    actor_kind: str,
    address: str | None = None,
) -> UserRow:
    email = email.strip().lower()
    if not EMAIL.fullmatch(email) or len(email) > 320:
        raise ProvisionError(f"'{email}' is not an e-mail address")
    try:
        r: Role = parse_role(role)
        password_hash = hash_password(password) if password is not None else None
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None
    team_list = _teams(teams)
    with store.unit_of_work() as uow:
        row = uow.users.add(
            email=email,
            role=r.value,
            teams=team_list,
            password_hash=password_hash,
            person=person,
            at=at,
        )
        if row is None:
            raise Conflict(f"a user '{email}' already exists")
        audit.record(
            uow,
            at=at,
            actor=actor,
            actor_kind=actor_kind,
            action="user.create",
            target=f"user:{row.id}",
            address=address,
            after={"role": row.role, "teams": row.teams, "person": person},
        )
        uow.commit()
    return row


def create_key(
    store: Store,
    *,
    name: str,
    scopes: Sequence[str],
    teams: Sequence[str] = (),
    at: datetime,
    actor: str,
    actor_kind: str,
    address: str | None = None,
) -> tuple[str, ApiKeyRow]:
    """A new key: its secret (to show once) and its stored row."""
    if not KEY_NAME.fullmatch(name):
        raise ProvisionError(
            f"'{name}' is not a key name: 1-120 letters, digits, _ . : -, starting with a "
            "letter or digit"
        )
    try:
        scope_list: list[Scope] = parse_scopes(scopes)
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None
    team_list = _teams(teams)
    secret = new_api_key()
    with store.unit_of_work() as uow:
        row = uow.api_keys.add(
            name=name,
            secret_hash=hash_api_key(secret),
            scopes=[s.value for s in scope_list],
            teams=team_list,
            created_by=actor,
            at=at,
        )
        if row is None:
            raise Conflict(f"a key named '{name}' already exists (names are never reused)")
        audit.record(
            uow,
            at=at,
            actor=actor,
            actor_kind=actor_kind,
            action="key.create",
            target=f"key:{name}",
            address=address,
            after={"scopes": row.scopes, "teams": row.teams},
        )
        uow.commit()
    return secret, row


def revoke_key(
    store: Store,
    *,
    name: str,
    at: datetime,
    actor: str,
    actor_kind: str,
    address: str | None = None,
) -> ApiKeyRow:
    with store.unit_of_work() as uow:
        before = uow.api_keys.get(name)
        if before is None:
            raise NoSuchKey(f"no key named '{name}'")
        row = uow.api_keys.revoke(name, at=at)
        assert row is not None
        if before.revoked_at is None:
            audit.record(
                uow,
                at=at,
                actor=actor,
                actor_kind=actor_kind,
                action="key.revoke",
                target=f"key:{name}",
                address=address,
                before={"revoked": False},
                after={"revoked": True},
            )
        uow.commit()
    return row


def disable_user(
    store: Store,
    *,
    email: str,
    at: datetime,
    actor: str,
    actor_kind: str,
    address: str | None = None,
) -> UserRow:
    """Disable a user: their sessions end at their next request, and they cannot sign in
    (with a password or through single sign-on) until enabled again."""
    return _set_disabled(store, email, at, at, actor, actor_kind, address)


def enable_user(
    store: Store,
    *,
    email: str,
    at: datetime,
    actor: str,
    actor_kind: str,
    address: str | None = None,
) -> UserRow:
    return _set_disabled(store, email, None, at, actor, actor_kind, address)


def _set_disabled(
    store: Store,
    email: str,
    disabled_at: datetime | None,
    at: datetime,
    actor: str,
    actor_kind: str,
    address: str | None,
) -> UserRow:
    with store.unit_of_work() as uow:
        before = uow.users.get_by_email(email)
        if before is None:
            raise NoSuchUser(f"no user '{email.strip().lower()}'")
        was = before.disabled_at is not None
        if was == (disabled_at is not None):
            return before
        row = uow.users.update(before.email, disabled_at=disabled_at)
        assert row is not None
        audit.record(
            uow,
            at=at,
            actor=actor,
            actor_kind=actor_kind,
            action="user.disable" if disabled_at else "user.enable",
            target=f"user:{row.id}",
            address=address,
            before={"disabled": was},
            after={"disabled": not was},
        )
        uow.commit()
    return row
