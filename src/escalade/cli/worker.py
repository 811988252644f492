"""``escalade worker``: run the engine alone, until stopped.

Several workers may run against one PostgreSQL database; they share the due work
(``FOR UPDATE SKIP LOCKED``). On SQLite run one.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

import typer

from escalade.cli.db import URL_HELP, open_store, require_current_schema
from escalade.durations import DurationError, parse_duration

if TYPE_CHECKING:
    from escalade.engine.outbox import Channel
    from escalade.engine.timers import TimerHandler
    from escalade.store.db import SqlStore

DEFAULT_HANDLERS = "escalade"


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except DurationError as exc:
        typer.echo(f"error: {option}: {exc}", err=True)
        raise typer.Exit(1) from None


def _channels(store: SqlStore, fallback: Channel, strict: bool) -> Channel:
    """The active policy version's channels, with signed action links."""
    from escalade.channels.links import links_from_env
    from escalade.channels.router import ChannelSetupError, policy_channels
    from escalade.policy.models import Policy

    with store.unit_of_work(readonly=True) as uow:
        active = uow.policies.active_id()
        row = uow.policies.get(active) if active is not None else uow.policies.latest()
    if row is None:
        return fallback
    policy = Policy.model_validate_json(row.content)
    try:
        links = links_from_env(store.url.render_as_string(hide_password=False))
    except (ValueError, OSError) as exc:
        typer.echo(f"error: action links: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        channels = policy_channels(policy, fallback=fallback, links=links, strict=strict)
    except ChannelSetupError as exc:
        typer.echo(f"error: policy '{policy.id}': channels: {exc}", err=True)
        raise typer.Exit(1) from None
    for problem in channels.problems:
        typer.echo(f"warning: {problem}; its messages are only logged", err=True)
    return channels


def worker(
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    handlers: str = typer.Option(
        DEFAULT_HANDLERS,
        "--handlers",
        help="Timer handlers: 'escalade' (SLA clocks, ladders, reminders) or MODULE:NAME",
    ),
    batch: int = typer.Option(256, "--batch", min=1, help="Most rows claimed per step pass"),
    lease: str = typer.Option("30s", "--lease", help="How long a claim is held, e.g. 30s"),
    late_tolerance: str = typer.Option(
        "5s", "--late-tolerance", help="Timers fired later than this are marked late"
    ),
    retry_base: str = typer.Option(
        "5s", "--retry-base", help="First delay before a failed message is retried (doubles)"
    ),
    max_attempts: int = typer.Option(
        10, "--max-attempts", min=1, help="Attempts before a message gives up"
    ),
    poll: float = typer.Option(1.0, "--poll", min=0.01, help="Seconds between idle polls"),
    once: bool = typer.Option(False, "--once", help="Run until nothing is due, then exit"),
    name: str | None = typer.Option(None, "--name", help="Worker name in claims and the ledger"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each pass"),
    strict_channels: bool = typer.Option(
        False,
        "--strict-channels",
        help="Refuse to start when a channel's secret is missing (default: log its messages)",
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=1, max=65535, help="Serve Prometheus /metrics on this port"
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="Address for --metrics-port"
    ),
) -> None:
    """Run the engine (timers, then the outbox) until Ctrl-C or SIGTERM."""
    # imported here so that other commands start without the engine and the database
    from escalade.bootstrap import bootstrap
    from escalade.clock import SystemClock
    from escalade.engine import Engine, EngineConfig, load_handlers
    from escalade.engine.registry import HandlerSpecError
    from escalade.service.wiring import TIMER_KINDS, LoggingChannel
    from escalade.settings import Settings

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from escalade.logredact import protect_handlers  # no personal data or secrets in logs

    protect_handlers()
    builtin = handlers == DEFAULT_HANDLERS
    handler_set: dict[str, TimerHandler] = {}
    if not builtin:
        try:
            handler_set = load_handlers(handlers)
        except HandlerSpecError as exc:
            typer.echo(f"error: --handlers: {exc}", err=True)
            raise typer.Exit(1) from None
    config = EngineConfig(
        batch_size=batch,
        lease=_duration(lease, "--lease"),
        late_tolerance=_duration(late_tolerance, "--late-tolerance"),
        retry_base=_duration(retry_base, "--retry-base"),
        max_attempts=max_attempts,
    )
    store = open_store(url)
    require_current_schema(store)
    engine: Engine | None
    if builtin:
        # The escalation engine: timers of every escalation in the database, each run
        # against the policy version that escalation started with. Messages go through
        # the channels of the most recently applied policy; message channels it
        # configures nothing for are logged and recorded on the timeline.
        channels = _channels(store, LoggingChannel(), strict_channels)
        runtime = bootstrap(
            Settings.from_env(),
            store=store,
            engine_config=config,
            worker=name,
            channels=channels,
        )
        engine = runtime.engine
        assert engine is not None
        kinds = len(TIMER_KINDS)
    else:
        engine = Engine(store, SystemClock(), handler_set, config=config, worker=name)
        kinds = len(handler_set)
        if not handler_set:
            typer.echo("warning: no timer handlers registered; nothing will fire", err=True)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            typer.echo(f"error: --metrics-port {metrics_port}: {exc.strerror}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"worker {engine.worker} on {store.describe()}: {kinds} timer kind(s)", err=True)
    try:
        if once:
            done = engine.run_until_idle()
            typer.echo(f"{done} action(s) done", err=True)
            return
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        engine.run_forever(stop, poll_interval=poll)
    finally:
        store.dispose()
