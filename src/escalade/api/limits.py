"""Limits at the edge: every request is checked here, before any view or store sees it.

An ASGI middleware, so the limits hold for every endpoint, including ones added later:

- the body is at most ``max_body_bytes`` (413; a ``Content-Length`` above it is refused
  before the body is read, a chunked body as soon as it passes the limit);
- a JSON body (no content type, ``application/json`` or ``…+json``) must be UTF-8 JSON,
  nested at most ``max_depth`` levels, with strings of at most ``max_string_chars``
  characters and keys of at most ``max_key_chars``; no string or key may hold a NUL
  character or a lone surrogate (no database can store them); numbers must be finite
  (``NaN``, ``Infinity`` and ``1e999`` are refused) and integers within 64 bits (422,
  naming each offending field);
- the path and query may not hold a NUL character (422).

Every refusal uses the API's one error shape (``escalade.api.errors``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from escalade.api.errors import error_item, error_response


@dataclass(frozen=True)
class Limits:
    """What one request may hold (documented in docs/api.md)."""

    max_body_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_string_chars: int = 100_000
    max_key_chars: int = 200
    max_problems: int = 20  # reported at most, per request


INT64_MAX = 2**63 - 1
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


class _NonFinite(str):
    """A JSON number that is not a finite float (NaN, Infinity, 1e999)."""


class _HugeInt(str):
    """A JSON integer beyond 64 bits."""


def _parse_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _parse_int(text: str) -> int | _HugeInt:
    if len(text.lstrip("-")) > 19:
        return _HugeInt(text)
    value = int(text)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else _HugeInt(text)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads a body without a content type as JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _char_problem(text: str, what: str) -> tuple[str, str] | None:
    bad = _BAD_CHAR.search(text)
    if bad is None:
        return None
    if bad.group() == "\x00":
        return (
            f"{what} holds a NUL character (\\u0000) at position {bad.start()}, "
            "which cannot be stored: remove it",
            "nul_character",
        )
    return (
        f"{what} holds a lone surrogate (\\u{ord(bad.group()):04x}) at position "
        f"{bad.start()}, which is not text: send valid Unicode",
        "invalid_unicode",
    )


def json_problems(value: Any, limits: Limits) -> Iterator[tuple[list[str | int], str, str]]:
    """Every problem in a parsed JSON body: (loc below ``body``, message, type)."""
    stack: list[tuple[Any, list[str | int], int]] = [(value, [], 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, _NonFinite):
            yield path, f"'{node}' is not a finite number: send a finite number", "non_finite"
        elif isinstance(node, _HugeInt):
            yield (
                path,
                f"the integer {node[:30]}{'…' if len(node) > 30 else ''} is out of range: "
                f"integers must be within ±{INT64_MAX}",
                "number_out_of_range",
            )
        elif isinstance(node, str):
            if len(node) > limits.max_string_chars:
                yield (
                    path,
                    f"the text is {len(node)} characters long; at most "
                    f"{limits.max_string_chars} are accepted",
                    "string_too_long",
                )
            elif (problem := _char_problem(node, "the text")) is not None:
                yield (path, *problem)
        elif isinstance(node, (dict, list)):
            if depth > limits.max_depth:
                yield (
                    path,
                    f"nesting is deeper than {limits.max_depth} levels: flatten the data",
                    "too_deep",
                )
                continue
            items = node.items() if isinstance(node, dict) else enumerate(node)
            children = []
            for key, child in items:
                if isinstance(key, str):
                    shown = key[:40] if len(key) > limits.max_key_chars else key
                    if len(key) > limits.max_key_chars:
                        yield (
                            [*path, shown],
                            f"the key is {len(key)} characters long; at most "
                            f"{limits.max_key_chars} are accepted",
                            "key_too_long",
                        )
                        continue
                    if (problem := _char_problem(key, "the key")) is not None:
                        yield ([*path, _BAD_CHAR.sub("?", key)], *problem)
                        continue
                children.append((child, [*path, key], depth + 1))
            stack.extend(reversed(children))


def check_json_body(body: bytes, limits: Limits) -> list[dict[str, Any]]:
    """Problems of a JSON request body, in the API's error shape (empty when it is fine)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [
            error_item(
                f"the body is not UTF-8 text (byte {exc.start} is invalid)",
                loc=["body"],
                type="json_invalid",
            )
        ]
    try:
        parsed = json.loads(
            text,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_NonFinite,
        )
    except RecursionError:
        return [
            error_item(
                f"nesting is deeper than {limits.max_depth} levels: flatten the data",
                loc=["body"],
                type="too_deep",
            )
        ]
    except json.JSONDecodeError as exc:
        return [
            error_item(
                f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                loc=["body"],
                type="json_invalid",
            )
        ]
    out = []
    for path, msg, kind in json_problems(parsed, limits):
        out.append(error_item(msg, loc=["body", *path], type=kind))
        if len(out) >= limits.max_problems:
            break
    return out


def _url_problems(scope: Scope) -> list[dict[str, Any]]:
    out = []
    path = scope.get("path", "")
    if "\x00" in path:
        out.append(
            error_item(
                "the path holds a NUL character (%00): remove it",
                loc=["path"],
                type="nul_character",
            )
        )
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                out.append(
                    error_item(
                        "the query parameter holds a NUL character (%00): remove it",
                        loc=["query", name.replace("\x00", "?")],
                        type="nul_character",
                    )
                )
    return out


Screen = Callable[[Scope], Awaitable[Response | None]]
BadBody = Callable[[str, list[dict[str, Any]]], Response | None]
"""An endpoint's own answer to a body that is not acceptable JSON (path, problems), for
endpoints that speak a peer's protocol (PagerDuty, Alertmanager); None: the usual 422."""


class LimitsMiddleware:
    """Refuses, in the one error shape, requests beyond ``Limits`` (see the module doc).
    ``screen`` is asked before a refusal: an answer that comes first (the app answers an
    anonymous caller of a protected operation 401, whatever the input), or None.
    ``bad_body`` may answer a bad JSON body in an endpoint's own protocol."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits | None = None,
        screen: Screen | None = None,
        bad_body: BadBody | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.screen = screen
        self.bad_body = bad_body

    async def _refuse(self, response: Response, scope: Scope, receive: Receive, send: Send) -> None:
        first = await self.screen(scope) if self.screen is not None else None
        await (first or response)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = _url_problems(scope)
        if problems:
            await self._refuse(error_response(422, problems), scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        too_large = declared is not None and declared.strip().isdigit()
        if too_large and int(str(declared)) > self.limits.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nothing to answer
            body += message.get("body", b"")
            if len(body) > self.limits.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if body and _is_json(headers.get("content-type")):
            problems = check_json_body(bytes(body), self.limits)
            if problems:
                own = self.bad_body(scope["path"], problems) if self.bad_body else None
                await self._refuse(own or error_response(422, problems), scope, receive, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        item = error_item(
            f"the request body is larger than {self.limits.max_body_bytes} bytes",
            loc=["body"],
            type="body_too_large",
        )
        too_large = error_response(413, [item], headers={"Connection": "close"})
        await self._refuse(too_large, scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the client sends next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


__all__ = ["Limits", "LimitsMiddleware", "check_json_body", "json_problems"]
