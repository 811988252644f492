"""The one JSON error shape of the API, and the handlers that produce it.

Every error answer, whatever its status (400, 401, 403, 404, 405, 409, 413, 422, 429, 500,
503), is::

    {"detail": [{"loc": ["body", "customer", "email"], "field": "customer.email",
                 "msg": "what is wrong, for a person", "type": "a stable code"}, ...]}

``loc`` says where (``body``, ``path``, ``query``, ``header`` and the keys below it),
``field`` is the same without the part of the request (empty for the request as a whole),
``msg`` what is wrong, and ``type`` a stable machine-readable code; an item may carry more
keys (e.g. ``needed``, ``rule``). A 503 and a 429 also carry ``Retry-After`` (seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from escalade.store.availability import database_outage
from escalade.store.interface import ConcurrentUpdate, StoreError, TransientConflict

log = logging.getLogger("escalade.api")

_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

_PARTS = {"body", "path", "query", "header", "cookie"}


class ErrorItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    loc: list[str] = []
    field: str = ""
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: list[ErrorItem]


def error_item(
    msg: str, *, loc: Sequence[str | int] = (), type: str = "invalid", **extra: Any
) -> dict[str, Any]:
    """One entry of ``detail``."""
    parts = [str(x) for x in loc]
    field = ".".join(parts[1:]) if parts and parts[0] in _PARTS else ".".join(parts)
    return {"loc": parts, "field": field, "msg": msg, "type": type, **extra}


def error_response(
    status: int,
    items: Sequence[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": list(items)}, headers=headers)


class ApiError(Exception):
    """An answer other than success, raised by a view or a dependency: status, message,
    its stable code (``kind``, or ``type=``; by default the status's), where (``loc``) and
    any further keys of the item. Answered as ``{"detail": exc.items}``."""

    def __init__(
        self,
        status: int,
        msg: str,
        kind: str | None = None,
        *,
        loc: Sequence[str | int] | None = (),
        type: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(msg)
        self.status = status
        code = kind or type or _TYPES.get(status, "error")
        self.item: dict[str, Any] = error_item(msg, loc=loc or (), type=code, **extra)
        self.items: list[dict[str, Any]] = [self.item]
        self.headers = headers

    @classmethod
    def many(cls, status: int, items: list[dict[str, Any]]) -> ApiError:
        """One answer listing several problems."""
        err = cls(status, items[0]["msg"] if items else "invalid", "invalid")
        err.items = items
        return err

    def response(self) -> JSONResponse:
        return error_response(self.status, self.items, self.headers)


class Hidden(ApiError):
    """A confidential escalation the caller may not see: answered exactly as a missing one
    (404); its own class lets a view record the hidden case once its unit of work is over."""


def error(msg: str, kind: str, loc: list[str] | None = None) -> dict[str, Any]:
    """A whole error body with one item (for documentation and tests)."""
    return {"detail": [error_item(msg, loc=loc or (), type=kind)]}


def validation_items(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors, field by field (the 422 bodies the API has always given)."""
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


Screen = Callable[[Request], Awaitable[JSONResponse | None]]
"""Consulted before answering a request's input errors: an answer that comes first (e.g.
401 to an anonymous caller of a protected operation), or None."""


def install_error_handlers(app: FastAPI, screen: Screen | None = None) -> None:
    """Make every error the app can give use the one shape. ``screen`` is asked first
    when the input is invalid (422) or unreadable (400)."""

    async def _screened(request: Request) -> JSONResponse | None:
        return await screen(request) if screen is not None else None

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _screened(request) or error_response(422, validation_items(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that cannot be read as JSON at all
            first = await _screened(request)
            if first is not None:
                return first
            item = error_item(
                f"the body cannot be read as JSON: {exc.detail}", loc=["body"], type="json_invalid"
            )
            return error_response(422, [item])
        detail = exc.detail
        if isinstance(detail, list):  # already in the shape
            items = detail
        else:
            items = [error_item(str(detail), type=_TYPES.get(exc.status_code, "error"))]
        return error_response(exc.status_code, items, dict(exc.headers or {}) or None)

    async def _database(_: Request, exc: Exception) -> JSONResponse:
        outage = database_outage(exc)
        if outage is None:  # e.g. a StoreError that is not about reaching the database
            return _internal(exc)
        return unavailable_response(outage.message, outage.kind, outage.retry_after)

    # handled here (not by the catch-all below, which also re-raises to the server's log):
    # a database outage, or a race lost on every attempt ('busy'), is an answer, not a crash
    for cls in (
        OperationalError,
        InterfaceError,
        PoolTimeout,
        StoreError,
        ConcurrentUpdate,
        TransientConflict,
    ):
        app.add_exception_handler(cls, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        outage = database_outage(exc)
        if outage is not None:
            return unavailable_response(outage.message, outage.kind, outage.retry_after)
        log.error("unexpected error on %s %s", request.method, request.url.path)
        return _internal(exc)


def _internal(exc: Exception) -> JSONResponse:
    return error_response(
        500,
        [
            error_item(
                f"internal error ({type(exc).__name__}); this is a bug in Escalade, "
                "please report it",
                type="internal_error",
            )
        ],
    )


def unavailable_response(msg: str, kind: str, retry_after: int) -> JSONResponse:
    """503 with ``Retry-After``: the database is busy or unavailable."""
    return error_response(
        503,
        [error_item(msg, loc=["database"], type=f"database_{kind}")],
        headers={"Retry-After": str(retry_after)},
    )


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Answers every protected operation may give (documented for clients and Schemathesis).
PROTECTED: dict[int | str, dict[str, Any]] = {
    401: _doc("No credentials, or unknown or revoked ones"),
    403: _doc("Authenticated, but not allowed (scope, CSRF, role or authority matrix)"),
    413: _doc("The body is larger than the limit (docs/api.md, 'Limits at the edge')"),
    422: _doc("Invalid input, field by field"),
}
INTAKE: dict[int | str, dict[str, Any]] = {
    **PROTECTED,
    429: _doc("Too many requests; try again after Retry-After seconds"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _doc("No such thing (or not yours to see)")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _doc("Not allowed now; the reason says why")}


__all__ = [
    "CONFLICT",
    "INTAKE",
    "NOT_FOUND",
    "PROTECTED",
    "ApiError",
    "ErrorBody",
    "ErrorItem",
    "Hidden",
    "Screen",
    "error",
    "error_item",
    "error_response",
    "install_error_handlers",
    "unavailable_response",
    "validation_items",
]
