"""``escalade serve``: the HTTP API on one machine (``--workers N``: N API processes on
PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from escalade.cli.db import require_current_schema
from escalade.cli.policyfile import allow_includes_outside_option, router_or_exit
from escalade.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

# What a worker process of ``--workers N`` builds its app from (set by the parent).
_WORKER_ENV = "ESCALADE_SERVE_WORKER"


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
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="API processes sharing the port (PostgreSQL only; each runs its engine unless "
        "--no-engine)",
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

    from escalade.logredact import serve_log_config  # no personal data or secrets in logs

    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: HTTPS needs both --ssl-certfile and --ssl-keyfile", err=True)
        raise typer.Exit(1)
    for tls_file in (ssl_certfile, ssl_keyfile):
        if tls_file is not None and not tls_file.is_file():
            typer.echo(f"error: {tls_file}: no such file", err=True)
            raise typer.Exit(1)
    certfile = str(ssl_certfile) if ssl_certfile else None
    keyfile = str(ssl_keyfile) if ssl_keyfile else None
    scheme = "https" if ssl_certfile else "http"
    settings = Settings.from_env(policy_path=policy)
    if workers > 1 and not settings.database_url.startswith("postgresql"):
        typer.echo(
            f"error: --workers {workers} needs PostgreSQL (ESCALADE_DATABASE_URL="
            "postgresql+psycopg://…): SQLite has one writer, so more API processes on one "
            "file only queue behind each other and their engines contend for its lock; "
            "serve SQLite with one process",
            err=True,
        )
        raise typer.Exit(2)
    app, banner = _build(
        settings,
        with_engine=with_engine and workers == 1,  # with N workers each runs its own
        allow_includes_outside=allow_includes_outside,
        strict_channels=strict_channels,
        quiet=False,
    )
    typer.echo(
        f"Escalade serving policy {banner} on {scheme}://{host}:{port}"
        + (f" with {workers} API processes" if workers > 1 else "")
        + (", an engine in each" if workers > 1 and with_engine else ""),
        err=True,
    )
    if workers == 1:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            log_config=serve_log_config(),
            loop="auto",  # uvloop when installed (uvicorn[standard])
            http="auto",  # httptools when installed
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        return
    # several processes: each builds the same app (the policy version is applied and
    # audited once, above; the workers find it current)
    os.environ[_WORKER_ENV] = "|".join(
        [
            str(settings.policy_path),
            str(int(with_engine)),
            str(int(allow_includes_outside)),
            str(int(strict_channels)),
        ]
    )
    os.environ["ESCALADE_POLICY"] = str(settings.policy_path)
    uvicorn.run(
        "escalade.cli.serve:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        log_config=serve_log_config(),
        loop="auto",
        http="auto",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


def worker_app() -> FastAPI:
    """The app of one ``serve --workers N`` process (uvicorn's factory)."""
    path, engine, outside, strict = os.environ[_WORKER_ENV].split("|")
    settings = Settings.from_env(policy_path=Path(path))
    app, _ = _build(
        settings,
        with_engine=engine == "1",
        allow_includes_outside=outside == "1",
        strict_channels=strict == "1",
        quiet=True,
    )
    return app


def _build(
    settings: Settings,
    *,
    with_engine: bool,
    allow_includes_outside: bool,
    strict_channels: bool,
    quiet: bool,
) -> tuple[FastAPI, str]:
    """The app and a description of what it serves (``quiet``: no warnings, a worker
    process repeats what its parent said)."""
    from escalade.api.app import create_app
    from escalade.auth.audit import policy_started
    from escalade.auth.config import AuthSettings
    from escalade.bootstrap import bootstrap, open_sql_store
    from escalade.channels.links import links_from_env
    from escalade.channels.router import ChannelSetupError, policy_channels
    from escalade.service.wiring import LoggingChannel

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
    for problem in [] if quiet else channels.problems:
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
    banner = f"'{active.id}' (database {store.describe()}{', engine in-process' if engine else ''})"
    return app, banner
