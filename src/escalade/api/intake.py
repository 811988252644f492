"""Real alert sources over HTTP, each speaking its own protocol and authenticated by an
``intake`` key (docs/integrations.md):

- ``POST /v2/enqueue``: PagerDuty Events API v2 — the key is the event's ``routing_key``;
  answers exactly as PagerDuty (202 with ``dedup_key``; 400 ``invalid event``).
- ``POST /v1/integrations/alertmanager``: Alertmanager's webhook (payload version 4).
- ``POST /api/v2/alerts``: the Alertmanager v2 API body Prometheus pushes (200; 400 with a
  message on a bad body, as Alertmanager).
- ``POST /v1/integrations/webhook/{name}``: a generic JSON webhook mapped by the policy's
  ``alerts.webhooks.<name>`` (422 naming the field a body lacks).

Each alert is received in its own unit of work by ``EscalationService.receive_alert``
(idempotent by the alert's key); pages go out through the outbox, never in the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from escalade.api.errors import INTAKE, ApiError, error_item, error_response
from escalade.api.escalations import Sight
from escalade.api.security import Gate, address
from escalade.auth import audit
from escalade.auth.scopes import Principal, Scope
from escalade.service import AlertIn, EscalationService
from escalade.service.intake import (
    MAX_ALERTS,
    AlertmanagerWebhook,
    IntakeError,
    PdEvent,
    PostableAlert,
    from_alertmanager,
    from_pagerduty,
    from_prometheus,
    from_webhook,
)
from escalade.store.rows import EscalationRow

_POSTABLE = TypeAdapter(list[PostableAlert])


def _pydantic_items(exc: ValidationError, part: str = "body") -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [part, *(str(x) for x in err.get("loc", ()))]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        out.append(error_item(msg, loc=loc, type=str(err.get("type", "invalid"))))
    return out


async def _json(request: Request, status: int = 422) -> Any:
    """The body as JSON, or ApiError ``status`` (422 as the rest of the API; 400 where the
    peer answers so) saying why not."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"the body is not valid JSON: {exc}"
        raise ApiError(status, msg, "json_invalid", loc=["body"]) from None


def _pd_error(err: Any) -> str:
    where = ".".join(str(x) for x in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"'{where}' is not allowed"
    return f"'{where}' {str(err['msg']).removeprefix('Value error, ')}"


def _pd_invalid(*errors: str) -> JSONResponse:
    return JSONResponse(
        status_code=400,
        content={
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": list(errors),
        },
    )


def bad_body_answer(path: str, problems: list[dict[str, Any]]) -> JSONResponse | None:
    """A body the edge limits refuse (not JSON, too deep, non-finite numbers), answered as
    each peer would: PagerDuty's 'invalid event', Alertmanager's 400."""
    if path == "/v2/enqueue":
        return _pd_invalid(*(str(p["msg"]) for p in problems))
    if path == "/api/v2/alerts":
        return error_response(400, problems)
    return None


def intake_router(
    service: EscalationService, gate: Gate, wake: Callable[[], None] | None
) -> APIRouter:
    api = APIRouter(tags=["intake"])
    intake = Depends(gate.require(Scope.intake))
    sight = Sight(service)

    def receive(
        alerts: list[AlertIn], request: Request, who: Principal, what: str
    ) -> list[dict[str, Any]]:
        """Receive each alert (its own unit of work), audit the request once, wake the
        engine so that first pages go out at once."""
        done = [service.receive_alert(a) for a in alerts]
        refs = sorted({e.ref for e in done if e is not None})
        with service.store.unit_of_work() as uow:
            audit.record(
                uow,
                at=service.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                action=f"alert.{what}",
                target=", ".join(f"escalation:{r}" for r in refs[:20]) or f"alert:{what}",
                address=address(request),
                after={
                    "alerts": len(alerts),
                    "firing": sum(a.status == "firing" for a in alerts),
                    "resolved": sum(a.status == "resolved" for a in alerts),
                    "escalations": refs[:100],
                },
            )
            uow.commit()
        if wake is not None:
            wake()
        return [_short(sight, who, e, a) for e, a in zip(done, alerts, strict=True)]

    # ------------------------------------------------------------------ PagerDuty

    @api.post(
        "/v2/enqueue",
        status_code=202,
        responses={
            400: {
                "description": "PagerDuty's 'invalid event' answer (also an unknown routing_key)"
            },
            429: {"description": "PagerDuty's 'throttle event' answer"},
        },
    )
    async def enqueue(request: Request) -> JSONResponse:
        """PagerDuty Events API v2: trigger, acknowledge or resolve by ``dedup_key``. The
        ``routing_key`` is an Escalade ``intake`` key."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _pd_invalid("Event object is not valid JSON")
        if not isinstance(body, dict):
            return _pd_invalid("Event object must be a JSON object")
        secret = body.get("routing_key")
        if not isinstance(secret, str) or not secret.strip():
            return _pd_invalid("'routing_key' is missing or blank")
        try:
            who = await run_in_threadpool(gate.by_key, request, secret.strip(), Scope.intake)
        except ApiError as refused:
            if refused.status == 429:
                return JSONResponse(
                    status_code=429,
                    content={
                        "status": "throttle event",
                        "message": (
                            "Requests for this service are arriving too quickly. "
                            "Please retry later."
                        ),
                    },
                    headers=refused.headers,
                )
            return _pd_invalid(f"Invalid routing key: {refused.item['msg']}")
        try:
            event = PdEvent.model_validate(body)
            alert = from_pagerduty(event)
        except ValidationError as exc:
            return _pd_invalid(*(_pd_error(e) for e in exc.errors()))
        except IntakeError as exc:
            return _pd_invalid(f"'{exc.field}' {exc.msg}")
        await run_in_threadpool(receive, [alert], request, who, f"pagerduty.{event.event_action}")
        return JSONResponse(
            status_code=202,
            content={"status": "success", "message": "Event processed", "dedup_key": alert.key},
        )

    # ------------------------------------------------------------------ Alertmanager

    @api.post("/v1/integrations/alertmanager", responses=INTAKE)
    async def alertmanager(request: Request, who: Principal = intake) -> dict[str, Any]:
        """Alertmanager's webhook (``webhook_config``, payload version 4): one escalation per
        alert fingerprint, or per group (``alerts.escalation_per``)."""
        body = await _json(request)
        try:
            payload = AlertmanagerWebhook.model_validate(body)
        except ValidationError as exc:
            raise ApiError.many(422, _pydantic_items(exc)) from None
        policy = service.book.require_active().policy
        alerts = from_alertmanager(payload, policy)
        done = await run_in_threadpool(receive, alerts, request, who, "alertmanager")
        return {"escalations": done}

    # ------------------------------------------------------------------ Prometheus

    @api.post(
        "/api/v2/alerts",
        responses={**INTAKE, 400: {"description": "A bad body, with a message (as Alertmanager)"}},
    )
    async def prometheus(request: Request, who: Principal = intake) -> JSONResponse:
        """Alerts as Prometheus pushes them to Alertmanager (a JSON list of postable
        alerts); ``endsAt`` in the past resolves. 200 with an empty body, as Alertmanager."""
        body = await _json(request, 400)
        if not isinstance(body, list):
            raise ApiError(
                400, "the body must be a JSON list of alerts", "bad_request", loc=["body"]
            )
        if len(body) > MAX_ALERTS:
            raise ApiError(
                400, f"at most {MAX_ALERTS} alerts in one request", "bad_request", loc=["body"]
            )
        try:
            posted = _POSTABLE.validate_python(body)
            alerts = from_prometheus(posted, service.clock.now())
        except ValidationError as exc:
            raise ApiError.many(400, _pydantic_items(exc)) from None
        except IntakeError as exc:
            raise ApiError(
                400, exc.msg, "bad_request", loc=["body", *exc.field.split(".")]
            ) from None
        await run_in_threadpool(receive, alerts, request, who, "prometheus")
        return JSONResponse(status_code=200, content=None)

    # ------------------------------------------------------------------ generic webhook

    @api.post(
        "/v1/integrations/webhook/{name}",
        responses={**INTAKE, 404: {"description": "No webhook of that name in the policy"}},
    )
    async def webhook(name: str, request: Request, who: Principal = intake) -> dict[str, Any]:
        """A JSON body mapped to an escalation by the policy's ``alerts.webhooks.<name>``."""
        policy = service.book.require_active().policy
        hook = policy.alerts.webhooks.get(name)
        if hook is None:
            known = ", ".join(sorted(policy.alerts.webhooks)) or "none"
            raise ApiError(
                404,
                f"the policy maps no webhook '{name[:80]}' (alerts.webhooks: {known})",
                "not_found",
                loc=["path", "name"],
            )
        body = await _json(request)
        try:
            alert = from_webhook(name, hook, body, policy)
        except IntakeError as exc:
            raise ApiError(422, exc.msg, "unmappable", loc=["body", exc.field]) from None
        done = await run_in_threadpool(receive, [alert], request, who, f"webhook.{name}")
        return {"escalation": done[0]}

    return api


def _short(
    sight: Sight, who: Principal, esc: EscalationRow | None, alert: AlertIn
) -> dict[str, Any]:
    """What an intake answers per alert: its key, status and escalation (ref and state; a
    confidential one the key may not see: its ref and ``confidential: true`` only)."""
    out: dict[str, Any] = {"key": alert.key, "status": alert.status, "ref": None, "state": None}
    if esc is None:
        return out
    view = sight.view_for(who, esc)
    if view.get("confidential"):
        return {**out, "ref": esc.ref, "confidential": True}
    return {**out, "ref": esc.ref, "state": esc.state}
