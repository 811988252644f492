"""The FastAPI application: ``create_app(settings)`` builds it; nothing runs at import."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from escalade import __version__
from escalade.api.deliveries import (
    action_links_router,
    deliveries_router,
    metrics_router,
    slack_actions_router,
)
from escalade.api.errors import error_item, error_response, install_error_handlers
from escalade.api.escalations import escalation_router
from escalade.api.health import readiness
from escalade.api.limits import Limits, LimitsMiddleware
from escalade.channels.links import ActionLinks
from escalade.clock import Clock, SystemClock
from escalade.engine.runner import Engine
from escalade.loading import router_for
from escalade.policy import Policy
from escalade.routing.models import Decision, EscalationInput
from escalade.routing.router import Router, RoutingInputError
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store import Store


@dataclass
class AppState:
    settings: Settings
    policy: Policy
    policy_path: Path | None
    router: Router
    clock: Clock
    store: Store | None = None
    engine: Engine | None = None
    engine_thread: threading.Thread | None = None


def create_app(
    settings: Settings,
    policy: Policy,
    policy_path: Path | None,
    clock: Clock | None = None,
    *,
    service: EscalationService | None = None,
    engine: Engine | None = None,
    limits: Limits | None = None,
    links: ActionLinks | None = None,
    slack_signing_secret: str | None = None,
) -> FastAPI:
    """The API. With a ``service`` it stores escalations; with an ``engine`` it also runs
    the engine in a thread for as long as it serves (the single-machine default).
    ``limits`` bound every request (``escalade.api.limits``)."""
    state = AppState(
        settings=settings,
        policy=policy,
        policy_path=policy_path,
        router=service.active.router
        if service and service.active
        else router_for(policy, policy_path),
        clock=clock or SystemClock(),
        store=service.store if service is not None else None,
        engine=engine,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if engine is not None:
            thread = threading.Thread(
                target=engine.run_forever, args=(stop,), name="escalade-engine", daemon=True
            )
            thread.start()
        state.engine_thread = thread
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)

    # the interactive docs (/docs, /redoc) load their scripts and styles from this app,
    # never from a CDN: they work offline
    app = FastAPIOffline(
        title="Escalade",
        version=__version__,
        description="Support escalation and on-call: the escalation process as code.",
        lifespan=lifespan,
    )
    if service is not None:
        app.include_router(escalation_router(service, engine.wake if engine else None))
        app.include_router(deliveries_router(service))
        if links is not None:
            wake = engine.wake if engine else None
            app.include_router(action_links_router(service, links, wake))
            if slack_signing_secret:
                app.include_router(slack_actions_router(service, links, slack_signing_secret, wake))
    app.include_router(metrics_router())
    app.state.escalade = state

    app.add_middleware(LimitsMiddleware, limits=limits or Limits())
    install_error_handlers(app)

    @app.exception_handler(RoutingInputError)
    async def _unknown(_: Any, exc: RoutingInputError) -> JSONResponse:
        item = error_item(exc.message, loc=["body", exc.field], type="unknown_value")
        return error_response(422, [item])

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process is up and holds a valid policy (touches no database)."""
        return {"status": "ok", "version": __version__, "policy": state.policy.id}

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={503: {"description": "Not ready: which check failed, in the error shape"}},
    )
    def readyz() -> JSONResponse:
        """Readiness: the database answers, its schema is current, and the engine (when
        this process runs one) is running. 503 with ``Retry-After`` when not."""
        result = readiness(state.store, state.engine, state.engine_thread)
        if result.ready:
            return JSONResponse({"status": "ready", "checks": result.checks})
        items = [error_item(msg, loc=[check], type=kind) for check, msg, kind in result.failures]
        return error_response(503, items, headers={"Retry-After": "5"})

    @app.get("/v1/policy", tags=["policy"])
    def get_policy() -> dict[str, Any]:
        """The active policy."""
        return state.policy.model_dump(mode="json", by_alias=True, exclude_none=True)

    @app.post("/v1/route", tags=["routing"], response_model=Decision)
    def post_route(escalation: EscalationInput) -> Decision:
        """A routing decision, with its reasons, for a posted escalation (not stored)."""
        return state.router.route(escalation, state.clock.now())

    return app
