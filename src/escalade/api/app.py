"""The FastAPI application: ``create_app(settings)`` builds it; nothing runs at import."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from escalade import __version__
from escalade.api.deliveries import (
    action_links_router,
    deliveries_router,
    metrics_router,
    slack_actions_router,
)
from escalade.api.escalations import escalation_router
from escalade.channels.links import ActionLinks
from escalade.clock import Clock, SystemClock
from escalade.engine.runner import Engine
from escalade.escalation.service import EscalationService
from escalade.policy import Policy
from escalade.routing.loading import router_for
from escalade.routing.models import Decision, EscalationInput
from escalade.routing.router import Router, RoutingInputError
from escalade.settings import Settings


@dataclass
class AppState:
    settings: Settings
    policy: Policy
    policy_path: Path | None
    router: Router
    clock: Clock


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        out.append(
            {"loc": loc, "field": ".".join(loc[1:]) or "body", "msg": msg, "type": err.get("type")}
        )
    return out


def create_app(
    settings: Settings,
    policy: Policy,
    policy_path: Path | None,
    clock: Clock | None = None,
    *,
    service: EscalationService | None = None,
    engine: Engine | None = None,
    links: ActionLinks | None = None,
    slack_signing_secret: str | None = None,
) -> FastAPI:
    """The API. With a ``service`` it stores escalations; with an ``engine`` it also runs
    the engine in a thread for as long as it serves (the single-machine default)."""
    state = AppState(
        settings=settings,
        policy=policy,
        policy_path=policy_path,
        router=service.active.router
        if service and service.active
        else router_for(policy, policy_path),
        clock=clock or SystemClock(),
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
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)

    app = FastAPI(
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

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _field_errors(exc)})

    @app.exception_handler(RoutingInputError)
    async def _unknown(_: Request, exc: RoutingInputError) -> JSONResponse:
        detail = [{"loc": ["body", exc.field], "field": exc.field, "msg": exc.message}]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process is up and holds a valid policy."""
        return {"status": "ok", "version": __version__, "policy": state.policy.id}

    @app.get("/v1/policy", tags=["policy"])
    def get_policy() -> dict[str, Any]:
        """The active policy."""
        return state.policy.model_dump(mode="json", by_alias=True, exclude_none=True)

    @app.post("/v1/route", tags=["routing"], response_model=Decision)
    def post_route(escalation: EscalationInput) -> Decision:
        """A routing decision, with its reasons, for a posted escalation (not stored)."""
        return state.router.route(escalation, state.clock.now())

    return app
