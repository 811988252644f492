"""``escalade db``: create and upgrade the database schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from escalade.store import StoreError  # the store's interface: no SQLAlchemy

if TYPE_CHECKING:
    from escalade.store.db import SqlStore

db_app = typer.Typer(help="Create and upgrade the database.", no_args_is_help=True)

URL_HELP = "Database URL (default: $ESCALADE_DATABASE_URL, else sqlite:///./escalade.db)"


def open_store(url: str | None) -> SqlStore:
    """The store named by ``--url`` or the environment; a clear message if it is unusable."""
    from escalade.store.db import SqlStore  # SQLAlchemy: only for commands that need it

    try:
        return SqlStore(url) if url else SqlStore.from_env()
    except (StoreError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def require_current_schema(store: SqlStore) -> None:
    """Exit with a clear message unless the database is migrated to the newest schema."""
    try:
        revision = store.current_revision()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    from escalade.store.migrate import head_revision  # Alembic: only when it is needed

    if revision != head_revision():
        typer.echo(
            f"error: {store.describe()} is at schema {revision or 'empty'}, not "
            f"{head_revision()}: run escalade db upgrade first",
            err=True,
        )
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Apply the migrations shipped with Escalade (safe to run again)."""
    store = open_store(url)
    try:
        before = store.current_revision()
        store.upgrade(revision)
        after = store.current_revision()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    if before == after:
        typer.echo(f"{store.describe()}: already at revision {after}", err=True)
    else:
        typer.echo(f"{store.describe()}: upgraded from {before or 'empty'} to {after}", err=True)


@db_app.command("current")
def db_current(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Print the schema revision of the database and whether it is the newest."""
    store = open_store(url)
    try:
        current = store.current_revision()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    from escalade.store.migrate import head_revision

    head = head_revision()
    state = (
        "up to date" if current == head else f"behind (newest is {head}); run escalade db upgrade"
    )
    typer.echo(f"{current or 'empty'} ({state})")
