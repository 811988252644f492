"""``escalade serve``: the HTTP API on one machine."""

from __future__ import annotations

from pathlib import Path

import typer

from escalade.cli.db import require_current_schema
from escalade.cli.policyfile import router_or_exit
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
) -> None:
    """Serve Escalade's API."""
    # imported here so that other commands start without the server and the database
    import uvicorn

    from escalade.api.app import create_app
    from escalade.auth.audit import policy_started
    from escalade.auth.config import AuthSettings
    from escalade.clock import SystemClock
    from escalade.escalation.service import EscalationService
    from escalade.escalation.wiring import LoggingChannel, escalation_engine
    from escalade.store.db import SqlStore

    settings = Settings.from_env(policy_path=policy)
    if settings.policy_path is None:
        typer.echo("no policy: give --policy FILE or set ESCALADE_POLICY", err=True)
        raise typer.Exit(1)
    router = router_or_exit(settings.policy_path)
    active = router.policy
    store = SqlStore.from_settings(settings)
    require_current_schema(store)
    clock = SystemClock()
    try:
        auth = AuthSettings.from_env()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    service = EscalationService(store, clock)
    with store.unit_of_work(readonly=True) as uow:
        before = uow.policies.latest()
    version = service.apply_policy(active, router=router, by="serve")
    if before is None or before.id != version:  # a new (or another) version: audited
        policy_started(
            store,
            at=clock.now(),
            policy_id=active.id,
            before=before.id if before else None,
            after=version,
            source=str(settings.policy_path),
        )
    engine = escalation_engine(service, LoggingChannel(service)) if with_engine else None
    # the service holds the router: the app reads nothing again
    app = create_app(
        settings, active, settings.policy_path, clock, service=service, engine=engine, auth=auth
    )
    typer.echo(
        f"Escalade serving policy '{active.id}' on http://{host}:{port} "
        f"(database {store.describe()}{', engine in-process' if engine else ''})",
        err=True,
    )
    from escalade.logredact import serve_log_config  # no personal data or secrets in logs

    uvicorn.run(app, host=host, port=port, log_level="info", log_config=serve_log_config())
