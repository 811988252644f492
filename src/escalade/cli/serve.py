"""``escalade serve``: the HTTP API on one machine."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from escalade.cli.db import require_current_schema
from escalade.cli.policyfile import allow_includes_outside_option, router_or_exit
from escalade.settings import Settings


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    policy: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy file (default: $ESCALADE_POLICY or the example)"
    ),
    with_engine: bool = typer.Option(
        True, "--engine/--no-engine", help="Run the engine in this process (one machine)"
    ),
    allow_includes_outside: bool = allow_includes_outside_option(),
    strict_channels: bool = typer.Option(
        False,
        "--strict-channels",
        help="Refuse to start when a channel's secret is missing (default: log its messages)",
    ),
    ssl_certfile: Path | None = typer.Option(
        None, "--ssl-certfile", help="Serve HTTPS with this PEM certificate (and --ssl-keyfile)"
    ),
    ssl_keyfile: Path | None = typer.Option(
        None, "--ssl-keyfile", help="The certificate's PEM private key"
    ),
) -> None:
    """Serve Escalade's API."""
    # imported here so that other commands start without the server and the database
    import uvicorn

    from escalade.api.app import create_app
    from escalade.auth.audit import policy_started
    from escalade.auth.config import AuthSettings
    from escalade.bootstrap import bootstrap, open_sql_store
    from escalade.channels.links import links_from_env
    from escalade.channels.router import ChannelSetupError, policy_channels
    from escalade.service.wiring import LoggingChannel

    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: HTTPS needs both --ssl-certfile and --ssl-keyfile", err=True)
        raise typer.Exit(1)
    for tls_file in (ssl_certfile, ssl_keyfile):
        if tls_file is not None and not tls_file.is_file():
            typer.echo(f"error: {tls_file}: no such file", err=True)
            raise typer.Exit(1)
    settings = Settings.from_env(policy_path=policy)
    if settings.policy_path is None:
        typer.echo("no policy: give --policy FILE or set ESCALADE_POLICY", err=True)
        raise typer.Exit(1)
    router = router_or_exit(settings.policy_path, allow_includes_outside=allow_includes_outside)
    active = router.policy
    store = open_sql_store(settings)
    require_current_schema(store)
    try:
        auth = AuthSettings.from_env()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        links = links_from_env(settings.database_url)
    except (ValueError, OSError) as exc:
        typer.echo(f"error: action links: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        # the policy's channels; message channels it configures nothing for are logged
        channels = policy_channels(
            active, fallback=LoggingChannel(), links=links, strict=strict_channels
        )
    except ChannelSetupError as exc:
        typer.echo(f"error: {settings.policy_path}: channels: {exc}", err=True)
        raise typer.Exit(1) from None
    for problem in channels.problems:
        typer.echo(f"warning: {problem}; its messages are only logged", err=True)
    with store.unit_of_work(readonly=True) as uow:
        before = uow.policies.active_id()  # the version every process has active now
    runtime = bootstrap(
        settings,
        store=store,
        router=router,
        applied_by="serve",
        engine=with_engine,
        channels=channels,
    )
    version = runtime.policy_version
    if version is not None and before != version:
        # a new (or another) version: audited
        policy_started(
            store,
            at=runtime.clock.now(),
            policy_id=active.id,
            before=before,
            after=version,
            source=str(settings.policy_path),
        )
    engine = runtime.engine
    # the service holds the router: the app reads nothing again
    app = create_app(
        settings,
        active,
        settings.policy_path,
        runtime.clock,
        service=runtime.service,
        engine=engine,
        auth=auth,
        links=links,
        slack_signing_secret=os.environ.get("SLACK_SIGNING_SECRET") or None,
    )
    scheme = "https" if ssl_certfile else "http"
    typer.echo(
        f"Escalade serving policy '{active.id}' on {scheme}://{host}:{port} "
        f"(database {store.describe()}{', engine in-process' if engine else ''})",
        err=True,
    )
    from escalade.logredact import serve_log_config  # no personal data or secrets in logs

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=serve_log_config(),
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
