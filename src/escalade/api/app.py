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
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import compile_path
from starlette.types import Scope as AsgiScope

from escalade import __version__
from escalade.api.access import access_router
from escalade.api.deliveries import (
    action_links_router,
    deliveries_router,
    slack_actions_router,
)
from escalade.api.errors import (
    PROTECTED,
    ApiError,
    error_item,
    error_response,
    install_error_handlers,
    unavailable_response,
)
from escalade.api.escalations import escalation_router
from escalade.api.health import readiness
from escalade.api.intake import bad_body_answer, intake_router
from escalade.api.limits import Limits, LimitsMiddleware
from escalade.api.metrics import Metrics, metrics_router
from escalade.api.policies import policy_router
from escalade.api.schedules import schedule_router
from escalade.api.security import Gate
from escalade.auth.config import AuthSettings
from escalade.auth.scopes import Principal, Scope
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
from escalade.store.availability import database_outage

# Operations that need no credentials (besides the documentation pages): probes, signing
# in, and the action links (the signed link is the credential) and Slack's buttons
# (Slack's request signature is).
PUBLIC_OPERATIONS = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/v1/session"),
        ("GET", "/auth/oidc/login"),
        ("GET", "/auth/oidc/callback"),
        ("GET", "/v1/act/{token}"),
        ("POST", "/v1/act/{token}"),
        ("POST", "/v1/integrations/slack/actions"),
        ("POST", "/v2/enqueue"),  # PagerDuty events: the intake key is the body's routing_key
    }
)

_PUBLIC_PATHS = [(method, compile_path(path)[0]) for method, path in PUBLIC_OPERATIONS]


def _is_public(method: str, path: str) -> bool:
    return any(m == method and regex.match(path) for m, regex in _PUBLIC_PATHS)


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
    store: Store | None = None,
    auth: AuthSettings | None = None,
    limits: Limits | None = None,
    links: ActionLinks | None = None,
    slack_signing_secret: str | None = None,
) -> FastAPI:
    """The API. With a ``service`` it stores escalations; with an ``engine`` it also runs
    the engine in a thread for as long as it serves (the single-machine default). Keys,
    people and the audit log live in ``store`` (by default the service's). ``limits``
    bound every request (``escalade.api.limits``); with ``links`` the signed action links
    are served, and with ``slack_signing_secret`` Slack's interactive buttons."""
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
        state.engine_thread = thread
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)

    def take_up_policy(request: Request) -> None:
        """Before each request (but the liveness probe, which touches no database): a
        policy version another process made active becomes active here too (a one-row
        read at most once per ``service.policy_check_every`` seconds)."""
        if service is None or request.url.path == "/healthz":
            return
        try:
            service.refresh_policy()
        except Exception as exc:
            if database_outage(exc) is None:
                raise
            # the database is away: keep the version in hand; the request itself (if it
            # needs the database) answers 503

    # the interactive docs (/docs, /redoc) load their scripts and styles from this app,
    # never from a CDN: they work offline
    app = FastAPIOffline(
        dependencies=[Depends(take_up_policy)],
        title="Escalade",
        version=__version__,
        description=(
            "Support escalation and on-call: the escalation process as code. Authenticate "
            "with `Authorization: Bearer KEY` (see `escalade keys create`)."
        ),
        lifespan=lifespan,
    )
    if service is not None:
        wake = engine.wake if engine else None
        app.include_router(escalation_router(service, gate, wake))
        app.include_router(deliveries_router(service, gate))
        app.include_router(schedule_router(gate, service, active_policy))
        app.include_router(intake_router(service, gate, wake))
        if links is not None:
            app.include_router(action_links_router(service, links, wake))
            if slack_signing_secret:
                app.include_router(slack_actions_router(service, links, slack_signing_secret, wake))
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

    def _who_first(request: Request) -> JSONResponse | None:
        """FastAPI reads a JSON body before any dependency runs (and the limits read it
        before routing); so that an unknown caller learns nothing, not even what a body
        should look like, a protected operation answers 401 to an anonymous request
        whatever its body."""
        try:
            gate.authenticate(request, basic=True)  # each operation then takes what it takes
        except ApiError as refused:
            return refused.response()
        except Exception as exc:  # answered here: this runs outside the exception handlers
            outage = database_outage(exc)
            if outage is None:
                raise
            return unavailable_response(outage.message, outage.kind, outage.retry_after)
        return None

    async def _screen(request: Request) -> JSONResponse | None:
        route = getattr(request.scope.get("route"), "path", None)
        if route is None or (request.method, route) in PUBLIC_OPERATIONS:
            return None
        return await run_in_threadpool(_who_first, request)

    async def _limits_screen(scope: AsgiScope) -> JSONResponse | None:
        """Before the limits refuse a request's input (they run before routing): only a
        public operation tells an anonymous caller what is wrong with it; anything else
        answers 401 first."""
        if _is_public(scope["method"], scope["path"]):
            return None
        return await run_in_threadpool(_who_first, Request(scope))

    # the limits run inside the session middleware: when they refuse an input, a signed-in
    # caller is known (see _limits_screen)
    app.add_middleware(
        LimitsMiddleware,
        limits=limits or Limits(),
        screen=_limits_screen,
        bad_body=bad_body_answer,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=auth.session_secret,
        session_cookie="escalade_session",
        max_age=auth.session_max_age,
        same_site="lax",
        https_only=auth.session_https_only,
    )
    install_error_handlers(app, screen=_screen)

    @app.exception_handler(RoutingInputError)
    async def _unknown(_: Any, exc: RoutingInputError) -> JSONResponse:
        item = error_item(exc.message, loc=["body", exc.field], type="unknown_value")
        return error_response(422, [item])

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process is up and holds a valid policy (touches no database)."""
        return {"status": "ok", "version": __version__, "policy": active_policy().id}

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

    @app.post("/v1/route", tags=["routing"], response_model=Decision, responses=PROTECTED)
    def post_route(
        escalation: EscalationInput, who: Principal = Depends(gate.require(Scope.read))
    ) -> Decision:
        """A routing decision, with its reasons, for a posted escalation (not stored)."""
        return active_router().route(escalation, state.clock.now())

    return app
