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
    from escalade.engine.timers import TimerHandler

DEFAULT_HANDLERS = "escalade"


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except DurationError as exc:
        typer.echo(f"error: {option}: {exc}", err=True)
        raise typer.Exit(1) from None


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
    poll: float = typer.Option(1.0, "--poll", min=0.01, help="Seconds between idle polls"),
    once: bool = typer.Option(False, "--once", help="Run until nothing is due, then exit"),
    name: str | None = typer.Option(None, "--name", help="Worker name in claims and the ledger"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each pass"),
) -> None:
    """Run the engine (timers, then the outbox) until Ctrl-C or SIGTERM."""
    # imported here so that other commands start without the engine and the database
    from escalade.clock import SystemClock
    from escalade.engine import Engine, EngineConfig, load_handlers
    from escalade.engine.registry import HandlerSpecError
    from escalade.escalation.service import EscalationService
    from escalade.escalation.wiring import LoggingChannel, escalation_engine, escalation_handlers

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
    )
    store = open_store(url)
    require_current_schema(store)
    clock = SystemClock()
    if builtin:
        # The escalation engine: timers of every escalation in the database, each run
        # against the policy version that escalation started with. Real channels (email,
        # chat, …) arrive with the notification issue; until then messages are logged and
        # recorded on the timeline.
        service = EscalationService(store, clock)
        handler_set = escalation_handlers(service)
        engine = escalation_engine(service, LoggingChannel(service), config=config, worker=name)
    else:
        engine = Engine(store, clock, handler_set, config=config, worker=name)
    if not handler_set:
        typer.echo("warning: no timer handlers registered; nothing will fire", err=True)
    typer.echo(
        f"worker {engine.worker} on {store.describe()}: {len(handler_set)} timer kind(s)",
        err=True,
    )
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
