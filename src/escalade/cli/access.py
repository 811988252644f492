"""``escalade users``, ``escalade keys`` and ``escalade audit``: provisioning from scripts
(docs/contracts.md) and checking the audit log. Each applies pending migrations first and
uses the same database settings as ``escalade serve``."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from escalade.cli.db import URL_HELP, open_store
from escalade.clock import SystemClock
from escalade.store import StoreError

if TYPE_CHECKING:
    from escalade.store.db import SqlStore

users_app = typer.Typer(help="People who sign in.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

CLI_ACTOR = "cli"


def _store(url: str | None) -> SqlStore:
    store = open_store(url)
    try:
        store.upgrade()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    return store


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment (a container)
        return CLI_ACTOR


def _now() -> datetime:
    return SystemClock().now()


@users_app.command("create")
def users_create(
    email: str = typer.Argument(..., help="E-mail address (the sign-in name)"),
    role: str = typer.Option(..., "--role", help="admin, lead, responder or viewer"),
    team: list[str] = typer.Option([], "--team", help="A team of the policy (repeatable)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a password (12+ characters) from stdin"
    ),
    person: str | None = typer.Option(
        None, "--person", help="The policy person this user is (their roles and teams count)"
    ),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Add a user (without --password-stdin they sign in only through single sign-on)."""
    from escalade.auth.provision import ProvisionError, create_user

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    store = _store(url)
    try:
        row = create_user(
            store,
            email=email,
            role=role,
            teams=team,
            password=password,
            person=person,
            at=_now(),
            actor=_actor(),
            actor_kind="cli",
        )
    except ProvisionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    typer.echo(f"user {row.email} created ({row.role})", err=True)


@users_app.command("disable")
def users_disable(
    email: str = typer.Argument(..., help="The user's e-mail address"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Disable a user: their sessions end and they cannot sign in until enabled again."""
    _toggle(email, url, disable=True)


@users_app.command("enable")
def users_enable(
    email: str = typer.Argument(..., help="The user's e-mail address"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Enable a disabled user again."""
    _toggle(email, url, disable=False)


def _toggle(email: str, url: str | None, *, disable: bool) -> None:
    from escalade.auth.provision import ProvisionError, disable_user, enable_user

    store = _store(url)
    change = disable_user if disable else enable_user
    try:
        row = change(store, email=email, at=_now(), actor=_actor(), actor_kind="cli")
    except ProvisionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    typer.echo(f"user {row.email} {'disabled' if disable else 'enabled'}", err=True)


@users_app.command("list")
def users_list(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Every user, one JSON object a line."""
    from escalade.auth.provision import user_view

    store = _store(url)
    try:
        with store.unit_of_work(readonly=True) as uow:
            rows = uow.users.list_all()
    finally:
        store.dispose()
    for row in rows:
        typer.echo(json.dumps(user_view(row)))


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="A name for the key (unique, never reused)"),
    scope: list[str] = typer.Option(
        ..., "--scope", help="read, write, intake or admin (repeatable, or comma-separated)"
    ),
    team: list[str] = typer.Option([], "--team", help="Limit the key to a team (repeatable)"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Create a key and print its secret alone on stdout: it is shown only this once."""
    from escalade.auth.provision import ProvisionError, create_key

    store = _store(url)
    try:
        secret, _ = create_key(
            store, name=name, scopes=scope, teams=team, at=_now(), actor=_actor(), actor_kind="cli"
        )
    except ProvisionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    typer.echo(secret)


@keys_app.command("list")
def keys_list(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Every key (never its secret), one JSON object a line: scopes, teams, last use."""
    from escalade.auth.provision import key_view

    store = _store(url)
    try:
        with store.unit_of_work(readonly=True) as uow:
            rows = uow.api_keys.list_all()
    finally:
        store.dispose()
    for row in rows:
        typer.echo(json.dumps(key_view(row)))


@keys_app.command("revoke")
def keys_revoke(
    name: str = typer.Argument(..., help="The key's name"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Revoke a key: it is refused from the next request on."""
    from escalade.auth.provision import ProvisionError, revoke_key

    store = _store(url)
    try:
        revoke_key(store, name=name, at=_now(), actor=_actor(), actor_kind="cli")
    except ProvisionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    typer.echo(f"key {name} revoked", err=True)


@audit_app.command("verify")
def audit_verify(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Check the audit log's hash chain: exit 1 listing every changed, removed or moved
    entry."""
    from escalade.auth.audit import verify

    store = _store(url)
    try:
        count, problems = verify(store)
    finally:
        store.dispose()
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"audit log NOT intact: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {count} entries", err=True)


@audit_app.command("show")
def audit_show(
    after: int = typer.Option(0, "--after", help="Only entries after this id"),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Audit entries, one JSON object a line, oldest first."""
    store = _store(url)
    try:
        with store.unit_of_work(readonly=True) as uow:
            rows = uow.audit.entries(after_id=after, limit=limit)
    finally:
        store.dispose()
    for r in rows:
        typer.echo(
            json.dumps(
                {
                    "id": r.id,
                    "at": r.at.isoformat().replace("+00:00", "Z"),
                    "actor": r.actor,
                    "actor_kind": r.actor_kind,
                    "action": r.action,
                    "target": r.target,
                    "outcome": r.outcome,
                    "address": r.address,
                    "before": r.before,
                    "after": r.after,
                    "detail": r.detail,
                    "hash": r.hash,
                }
            )
        )
