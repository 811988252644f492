"""``/metrics``: Prometheus text format (needs the ``read`` scope: a Prometheus job sends
a bearer key). Requests by route template, method and status, their durations, refused
requests, and the audit log's length; and the process's delivery counters (outcomes per
channel, send times: ``escalade.engine.metrics``, in Prometheus' default registry, which
``escalade worker --metrics-port`` serves too). No counts of escalations: those would tell
who may not see them that confidential ones exist."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from escalade.api.errors import PROTECTED
from escalade.api.security import Gate
from escalade.auth.scopes import Principal, Scope
from escalade.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _AuditCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.store.unit_of_work(readonly=True) as uow:
            head = uow.audit.head()
        yield GaugeMetricFamily(
            "escalade_audit_entries", "Entries in the audit log", value=head.count if head else 0
        )


class Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "escalade_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "escalade_http_request_duration_seconds",
            "HTTP request durations by route template",
            ["route"],
            registry=self.registry,
        )
        self.registry.register(_AuditCollector(store))

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def _count(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            started = time.perf_counter()
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "unmatched")
            self.requests.labels(route, request.method, str(response.status_code)).inc()
            self.duration.labels(route).observe(time.perf_counter() - started)
            return response


def metrics_router(gate: Gate, metrics: Metrics) -> APIRouter:
    api = APIRouter(tags=["operations"], responses=PROTECTED)

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}},
    )
    def scrape(who: Principal = Depends(gate.require(Scope.read))) -> Response:
        """Prometheus metrics."""
        text = generate_latest(metrics.registry) + generate_latest(REGISTRY)
        return Response(text, media_type=CONTENT_TYPE)

    return api
