"""The FastAPI application: ``create_app(settings)`` builds it; nothing runs at import.

Every endpoint but ``/healthz`` needs authentication (``escalade.api.security``); errors
have one JSON shape, ``{"detail": [{"loc", "field", "msg", "type", …}]}``."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from escalade import __version__
from escalade.api.access import access_router
from escalade.api.errors import PROTECTED, ApiError
from escalade.api.escalations import escalation_router
from escalade.api.metrics import Metrics, metrics_router
from escalade.api.policies import policy_router
from escalade.api.security import Gate
from escalade.auth.config import AuthSettings
from escalade.auth.scopes import Principal, Scope
from escalade.clock import Clock, SystemClock
from escalade.engine.runner import Engine
from escalade.escalation.service import EscalationService
from escalade.policy import Policy
from escalade.routing.loading import router_for
from escalade.routing.models import Decision, EscalationInput
from escalade.routing.router import Router, RoutingInputError
from escalade.settings import Settings
from escalade.store import Store

# Operations that need no credentials (besides the documentation pages).
PUBLIC_OPERATIONS = frozenset(
    {
        ("GET", "/healthz"),
        ("POST", "/v1/session"),
        ("GET", "/auth/oidc/login"),
        ("GET", "/auth/oidc/callback"),
    }
)


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
    store: Store | None = None,
    auth: AuthSettings | None = None,
) -> FastAPI:
    """The API. With a ``service`` it stores escalations; with an ``engine`` it also runs
    the engine in a thread for as long as it serves (the single-machine default). Keys,
    people and the audit log live in ``store`` (by default the service's)."""
    state = AppState(
        settings=settings,
        policy=policy,
        policy_path=policy_path,
        router=service.active.router
        if service and service.active
        else router_for(policy, policy_path),
        clock=clock or SystemClock(),
    )
    auth = auth or AuthSettings.from_env()
    if store is None:
        if service is None:
            raise ValueError("create_app needs a store (for keys and the audit log)")
        store = service.store

    def active_policy() -> Policy:
        if service is not None and service.active is not None:
            return service.active.policy
        return state.policy

    def active_router() -> Router:
        if service is not None and service.active is not None:
            return service.active.router
        return state.router

    gate = Gate(store=store, clock=state.clock, policy=active_policy, settings=auth)

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
        description=(
            "Support escalation and on-call: the escalation process as code. Authenticate "
            "with `Authorization: Bearer KEY` (see `escalade keys create`)."
        ),
        lifespan=lifespan,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=auth.session_secret,
        session_cookie="escalade_session",
        max_age=auth.session_max_age,
        same_site="lax",
        https_only=auth.session_https_only,
    )
    if service is not None:
        app.include_router(escalation_router(service, gate, engine.wake if engine else None))
    app.include_router(policy_router(gate, service, active_policy))
    app.include_router(access_router(gate, active_policy))
    metrics = Metrics(store)
    metrics.install(app)
    app.include_router(metrics_router(gate, metrics))
    if auth.oidc is not None:
        from escalade.api.oidc import oidc_router  # Authlib: only when single sign-on is on

        app.include_router(oidc_router(gate, auth.oidc, active_policy))
    app.state.escalade = state
    app.state.gate = gate

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status, content={"detail": exc.items}, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON at all (e.g. not UTF-8)
            anonymous = _who_first(request)
            if anonymous is not None:
                return anonymous
            item = {
                "loc": ["body"],
                "field": "body",
                "msg": f"the body cannot be read as JSON: {exc.detail}",
                "type": "json_invalid",
            }
            return JSONResponse(status_code=422, content={"detail": [item]})
        detail = exc.detail
        items = (
            detail
            if isinstance(detail, list)
            else [{"loc": [], "field": "", "msg": str(detail), "type": f"http_{exc.status_code}"}]
        )
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": items},
            headers=getattr(exc, "headers", None),
        )

    def _who_first(request: Request) -> JSONResponse | None:
        """FastAPI reads a JSON body before any dependency runs; so that an unknown caller
        learns nothing, not even what a body should look like, a protected operation
        answers 401 to an anonymous request whatever its body."""
        route = getattr(request.scope.get("route"), "path", None)
        if route is None or (request.method, route) in PUBLIC_OPERATIONS:
            return None
        try:
            gate.authenticate(request)
        except ApiError as refused:
            return JSONResponse(
                status_code=refused.status,
                content={"detail": refused.items},
                headers=refused.headers,
            )
        return None

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _who_first(request) or JSONResponse(
            status_code=422, content={"detail": _field_errors(exc)}
        )

    @app.exception_handler(RoutingInputError)
    async def _unknown(_: Request, exc: RoutingInputError) -> JSONResponse:
        detail = [
            {"loc": ["body", exc.field], "field": exc.field, "msg": exc.message, "type": "value"}
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process is up and holds a valid policy."""
        return {"status": "ok", "version": __version__, "policy": active_policy().id}

    @app.post("/v1/route", tags=["routing"], response_model=Decision, responses=PROTECTED)
    def post_route(
        escalation: EscalationInput, who: Principal = Depends(gate.require(Scope.read))
    ) -> Decision:
        """A routing decision, with its reasons, for a posted escalation (not stored)."""
        return active_router().route(escalation, state.clock.now())

    return app
