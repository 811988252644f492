"""The policy file a command names, ready to route: or a clear message and exit status 1."""

from __future__ import annotations

from pathlib import Path

import typer

from escalade.loading import ModelLoadError, load_router
from escalade.policy import PolicyInvalid
from escalade.routing.router import Router


def router_or_exit(path: Path) -> Router:
    """The policy (``router.policy``) with its triage models loaded."""
    try:
        return load_router(path)
    except PolicyInvalid as exc:
        typer.echo(f"{path}: invalid policy:\n{exc}", err=True)
        raise typer.Exit(1) from None
    except ModelLoadError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
