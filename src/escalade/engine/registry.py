"""Which handler fires which timer kind.

``default_handlers()`` is what ``serve`` and ``worker`` run. Domain packages (SLA clocks,
ladders, triggers, on-call) add their handlers here as they land. ``load_handlers`` reads
``module:attribute`` (a dict, or a function returning one) so ``escalade worker
--handlers`` can run other handler sets (tests, benchmarks, plug-ins).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from escalade.engine.timers import TimerHandler
from escalade.errors import EscaladeError


class HandlerSpecError(EscaladeError, ValueError):
    """``--handlers`` does not name a handler set."""


def default_handlers() -> dict[str, TimerHandler]:
    return {}


def load_handlers(spec: str) -> dict[str, TimerHandler]:
    """``package.module:name`` → the handlers it names."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise HandlerSpecError(
            f"'{spec}' is not MODULE:NAME, e.g. escalade.engine.registry:default_handlers"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerSpecError(f"cannot import '{module_name}' (from '{spec}'): {exc}") from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise HandlerSpecError(f"'{module_name}' has no '{attr}' (from '{spec}')") from None
    if callable(value) and not isinstance(value, Mapping):
        value = value()
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and callable(v) for k, v in value.items()
    ):
        raise HandlerSpecError(f"'{spec}' is not a mapping of timer kind → handler")
    return dict(value)
