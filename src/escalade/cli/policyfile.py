"""The policy file a command names, ready to route: or a clear message and exit status 1."""

from __future__ import annotations

from pathlib import Path

import typer

from escalade.loading import ModelLoadError, load_router
from escalade.policy import PolicyInvalid
from escalade.routing.router import Router

ALLOW_INCLUDES_OUTSIDE_HELP = (
    "Let the policy include files outside its own folder (by default an include must "
    "resolve to the policy's folder or below)"
)


def allow_includes_outside_option() -> bool:
    """``--allow-includes-outside``, the same on every command that reads a policy."""
    return typer.Option(False, "--allow-includes-outside", help=ALLOW_INCLUDES_OUTSIDE_HELP)


def router_or_exit(path: Path, *, allow_includes_outside: bool = False) -> Router:
    """The policy (``router.policy``) with its triage models loaded."""
    try:
        return load_router(path, allow_includes_outside=allow_includes_outside)
    except PolicyInvalid as exc:
        typer.echo(f"{path}: invalid policy:\n{exc}", err=True)
        raise typer.Exit(1) from None
    except ModelLoadError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
