"""The one JSON error shape: ``{"detail": [{"loc", "field", "msg", "type", …}]}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    loc: list[str] = []
    field: str = ""
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: list[ErrorItem]


class ApiError(Exception):
    """Raised by views and dependencies; answered as ``{"detail": [...]}``."""

    def __init__(
        self,
        status: int,
        msg: str,
        kind: str,
        *,
        loc: list[str] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(msg)
        self.status = status
        loc = loc or []
        self.item: dict[str, Any] = {
            "loc": loc,
            "field": ".".join(loc[1:]) if len(loc) > 1 else "",
            "msg": msg,
            "type": kind,
            **extra,
        }
        self.headers = headers
        self.items: list[dict[str, Any]] = [self.item]

    @classmethod
    def many(cls, status: int, items: list[dict[str, Any]]) -> ApiError:
        """One answer listing several problems."""
        err = cls(status, items[0]["msg"] if items else "invalid", "invalid")
        err.items = items
        return err


def error(msg: str, kind: str, loc: list[str] | None = None) -> dict[str, Any]:
    return {"detail": [ApiError(0, msg, kind, loc=loc).item]}


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Answers every protected operation may give (documented for clients and Schemathesis).
PROTECTED: dict[int | str, dict[str, Any]] = {
    401: _doc("No credentials, or unknown or revoked ones"),
    403: _doc("Authenticated, but not allowed (scope, CSRF, role or authority matrix)"),
    422: _doc("Invalid input, field by field"),
}
INTAKE: dict[int | str, dict[str, Any]] = {
    **PROTECTED,
    429: _doc("Too many requests; try again after Retry-After seconds"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _doc("No such thing (or not yours to see)")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _doc("Not allowed now; the reason says why")}
