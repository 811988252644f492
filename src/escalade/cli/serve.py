"""``escalade serve``: the HTTP API on one machine."""

from __future__ import annotations

from pathlib import Path

import typer

from escalade.policy import PolicyInvalid, load_policy
from escalade.routing.loading import ModelLoadError
from escalade.settings import Settings


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    policy: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy file (default: $ESCALADE_POLICY or the example)"
    ),
) -> None:
    """Serve Escalade's API."""
    import uvicorn

    from escalade.api.app import create_app

    settings = Settings.from_env(policy_path=policy)
    if settings.policy_path is None:
        typer.echo("no policy: give --policy FILE or set ESCALADE_POLICY", err=True)
        raise typer.Exit(1)
    try:
        active = load_policy(settings.policy_path)
        app = create_app(settings, active, settings.policy_path)
    except PolicyInvalid as exc:
        typer.echo(f"{settings.policy_path}: invalid policy:\n{exc}", err=True)
        raise typer.Exit(1) from None
    except ModelLoadError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Escalade serving policy '{active.id}' on http://{host}:{port}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
