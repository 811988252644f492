"""Delivery over HTTP: an escalation's delivery log, the signed action links that
acknowledge, resolve or escalate from an email, chat message or SMS (the delivery
counters are in ``/metrics``, ``escalade.api.metrics``).

``GET /v1/act/{token}`` shows a confirm page and changes nothing (link scanners and chat
previews fetch links); its form's ``POST`` acts through ``EscalationService.act``. A
tampered link is refused with 403 and an expired one with 410, each with a page that
says why, and recorded on the timeline (``action_link.refused``)."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from escalade.api.errors import NOT_FOUND, PROTECTED, ApiError, Hidden
from escalade.api.escalations import Sight
from escalade.api.security import Gate
from escalade.auth.scopes import Principal, Scope
from escalade.channels.links import ActionClaims, ActionLinks, LinkExpired, LinkRefused
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.service import ActionRefused, EscalationService, NotFound
from escalade.store.rows import DeliveryRow


def _iso(t: Any) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t is not None else None


def delivery_view(d: DeliveryRow) -> dict[str, Any]:
    return {
        "at": _iso(d.at),
        "event": d.event.value,
        "key": d.key,
        "channel": d.channel,
        "instance": d.instance,
        "to": d.recipient,
        "attempt": d.attempt,
        "error": d.error,
        "retry_at": _iso(d.retry_at),
    }


def deliveries_router(service: EscalationService, gate: Gate) -> APIRouter:
    sight = Sight(service)
    router = APIRouter(tags=["delivery"], responses={**PROTECTED, **NOT_FOUND})

    @router.get("/v1/escalations/{ref}/deliveries")
    def get_deliveries(
        ref: str, request: Request, who: Principal = Depends(gate.require(Scope.read))
    ) -> dict[str, Any]:
        """Every delivery event of the escalation's messages, in order: queued, sent,
        failed (with the provider's error), retrying, gave_up, undeliverable, cancelled.
        Needs the ``read`` scope; a confidential escalation the caller may not see is
        answered as a missing one (404)."""
        try:
            with service.store.unit_of_work(readonly=True) as uow:
                esc = sight.visible(uow, who, ref)
                rows = uow.deliveries.for_escalation(esc.id)
        except Hidden:
            sight.record_hidden(request, who, ref)
            raise
        return {"ref": ref, "deliveries": [delivery_view(d) for d in rows]}

    return router


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1.1rem;padding:.6rem 1.4rem}}</style></head>
<body><h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _page(title: str, text: str, status: int = 200, form: str = "") -> HTMLResponse:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text), form=form)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def action_links_router(
    service: EscalationService,
    links: ActionLinks,
    wake: Callable[[], None] | None = None,
) -> APIRouter:
    router = APIRouter(tags=["delivery"])

    def _check(token: str, request: Request, method: str) -> ActionClaims | HTMLResponse:
        now = service.clock.now()
        try:
            return links.check(token, now)
        except LinkRefused as exc:
            claims = exc.claims if isinstance(exc, LinkExpired) else None
            _record_refusal(service, claims, str(exc), exc.status, request, method)
            title = "Link expired" if exc.status == 410 else "Link refused"
            return _page(title, str(exc), exc.status)

    @router.get("/v1/act/{token}", response_class=HTMLResponse)
    def confirm(token: str, request: Request) -> HTMLResponse:
        """The confirm page of an action link (nothing changes until its form is sent)."""
        claims = _check(token, request, "GET")
        if isinstance(claims, HTMLResponse):
            return claims
        with service.store.unit_of_work(readonly=True) as uow:
            esc = uow.escalations.get_by_ref(claims.ref)
        if esc is None:
            return _page("Not found", f"There is no escalation '{claims.ref}'.", 404)
        verb = claims.action.capitalize()
        form = (
            '<form method="post"><p><label>Your name (optional) '
            f'<input name="by" maxlength="200" placeholder="{html.escape(claims.to)}">'
            f'</label></p><button type="submit">{html.escape(verb)} '
            f"{html.escape(esc.ref)}</button></form>"
        )
        text = (
            f"{esc.ref}: {esc.subject} (priority {esc.priority}, state {esc.state}). "
            f"{verb} it as {claims.to}?"
        )
        return _page(f"{verb} {esc.ref}", text, form=form)

    @router.post("/v1/act/{token}", response_class=HTMLResponse)
    async def act(token: str, request: Request) -> HTMLResponse:
        """Take the link's action as the person it was sent to (or the name typed on the
        confirm page, for a link sent to a team's channel)."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        name = (form.get("by") or [""])[0].strip()[:200]
        return await run_in_threadpool(_act, token, request, name)

    def _act(token: str, request: Request, name: str) -> HTMLResponse:
        status, title, text = take_action(service, links, token, request, "POST", name, wake)
        return _page(title, text, status)

    return router


def take_action(
    service: EscalationService,
    links: ActionLinks,
    token: str,
    request: Request,
    method: str,
    name: str,
    wake: Callable[[], None] | None,
) -> tuple[int, str, str]:
    """Check an action token and act as ``name`` (else the link's recipient): the HTTP
    status, a title and a sentence saying what happened. Refusals are recorded."""
    now = service.clock.now()
    try:
        claims = links.check(token, now)
    except LinkRefused as exc:
        expired = exc.claims if isinstance(exc, LinkExpired) else None
        _record_refusal(service, expired, str(exc), exc.status, request, method)
        return exc.status, "Link expired" if exc.status == 410 else "Link refused", str(exc)
    by = name or claims.to
    try:
        # acknowledging tells those paged who took it; resolving closes the pages (the
        # acknowledge and resolve use cases do both)
        esc = service.act(claims.ref, claims.action, by=by)
    except NotFound as exc:
        return 404, "Not found", str(exc)
    except ActionRefused as exc:
        return 409, "Not done", str(exc)
    if wake is not None:
        wake()
    done = {"acknowledge": "acknowledged", "resolve": "resolved", "escalate": "escalated"}
    verb = done[claims.action]
    return 200, f"{esc.ref} {verb}", f"{esc.ref} was {verb} by {by}; it is now {esc.state}."


def slack_signature_ok(
    secret: str, timestamp: str, body: bytes, signature: str, now: float
) -> bool:
    """Slack's request signing: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``, with a
    timestamp within five minutes."""
    try:
        if abs(now - float(timestamp)) > 300:
            return False
    except ValueError:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def slack_actions_router(
    service: EscalationService,
    links: ActionLinks,
    signing_secret: str,
    wake: Callable[[], None] | None = None,
) -> APIRouter:
    """Slack's interactivity endpoint: a click on an ``interactive`` Slack button (its
    value is the action link's token) acts as the Slack user who clicked."""
    router = APIRouter(tags=["delivery"])

    @router.post("/v1/integrations/slack/actions")
    async def slack_actions(request: Request) -> JSONResponse:
        body = await request.body()
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        now = service.clock.now().timestamp()
        if not slack_signature_ok(signing_secret, stamp, body, signature, now):
            raise ApiError(
                401,
                "the request is not signed by Slack with this signing secret",
                "unauthenticated",
                loc=("header", "X-Slack-Signature"),
            )
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
            user = payload.get("user") or {}
            by = str(user.get("username") or user.get("name") or user.get("id") or "slack")
            token = next(
                str(a["value"])
                for a in payload.get("actions", [])
                if str(a.get("action_id", "")).startswith("escalade-") and a.get("value")
            )
        except (KeyError, ValueError, StopIteration, TypeError, AttributeError):
            raise ApiError(
                400, "not an Escalade button", "invalid", loc=("body", "payload")
            ) from None
        status, _title, text = await run_in_threadpool(
            take_action, service, links, token, request, "SLACK", by, wake
        )
        # Slack shows an error for any answer but 200; the outcome is in the text
        return JSONResponse({"response_type": "ephemeral", "text": text, "status": status})

    return router


def _record_refusal(
    service: EscalationService,
    claims: ActionClaims | None,
    why: str,
    status: int,
    request: Request,
    method: str,
) -> None:
    """An action link refused goes on the timeline: of its escalation when the link was
    genuine but expired, else on the system timeline (a tampered link proves nothing)."""
    now = service.clock.now()
    with service.store.unit_of_work() as uow:
        esc = uow.escalations.get_by_ref(claims.ref) if claims else None
        uow.timeline.append(
            esc.id if esc else None,
            at=now,
            actor=SYSTEM,
            kind=EventKind.action_link_refused.value,
            reason=why,
            data={
                "status": status,
                "method": method,
                "client": request.client.host if request.client else None,
                **({"action": claims.action, "to": claims.to} if claims else {}),
            },
        )
        uow.commit()
