"""The one JSON error shape of the API, and the handlers that produce it.

Every error answer, whatever its status (400, 404, 405, 409, 413, 422, 500, 503), is::

    {"detail": [{"loc": ["body", "customer", "email"], "field": "customer.email",
                 "msg": "what is wrong, for a person", "type": "a stable code"}, ...]}

``loc`` says where (``body``, ``path``, ``query``, ``header`` and the keys below it),
``field`` is the same without the part of the request (empty for the request as a whole),
``msg`` what is wrong, and ``type`` a stable machine-readable code. A 503 also carries
``Retry-After`` (seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from escalade.store.availability import database_outage
from escalade.store.interface import StoreError

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
    500: "internal_error",
    503: "unavailable",
}


def error_item(msg: str, *, loc: Sequence[str | int] = (), type: str = "invalid") -> dict[str, Any]:
    """One entry of ``detail``."""
    parts = [str(x) for x in loc]
    field = ".".join(parts[1:]) if parts and parts[0] in _PARTS else ".".join(parts)
    return {"loc": parts, "field": field, "msg": msg, "type": type}


_PARTS = {"body", "path", "query", "header", "cookie"}


def error_response(
    status: int,
    items: Sequence[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": list(items)}, headers=headers)


class ApiError(Exception):
    """An answer other than success, raised by a view: status, message and where."""

    def __init__(
        self,
        status: int,
        msg: str,
        *,
        loc: Sequence[str | int] = (),
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.item = error_item(msg, loc=loc, type=type or _TYPES.get(status, "error"))
        self.headers = headers


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


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app can give use the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, [exc.item], exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_items(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
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
    # a database outage is an answer, not a crash
    for cls in (OperationalError, InterfaceError, PoolTimeout, StoreError):
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


__all__ = [
    "ApiError",
    "error_item",
    "error_response",
    "install_error_handlers",
    "unavailable_response",
    "validation_items",
]
