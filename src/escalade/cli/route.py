"""``escalade route``: routing decisions for scripts (docs/contracts.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from escalade.batching import batch_gc
from escalade.cli.policyfile import allow_includes_outside_option, router_or_exit
from escalade.clock import SystemClock
from escalade.errors import EscaladeError
from escalade.routing.explain import explain
from escalade.routing.models import Decision, EscalationInput
from escalade.routing.router import Router, RoutingInputError


class InputError(EscaladeError):
    pass


def describe_validation(exc: ValidationError) -> str:
    """Field-level errors in one line: ``customer.monthly_value: must be ≥ 0; …``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(x) for x in err["loc"]) or "input"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def read_inputs(path: str) -> tuple[bool, list[tuple[str, Any]]]:
    """(single, [(where, raw object)]) from a file or stdin: one object, an array, or JSONL."""
    name = "stdin" if path == "-" else path
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{name}:{line}: not UTF-8 text") from None
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{name}: no input: expected a JSON object, an array or JSON Lines")
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    else:
        if isinstance(whole, list):
            return False, [(f"{name}: item {i + 1}", obj) for i, obj in enumerate(whole)]
        return True, [(name, whole)]
    items: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((f"{name}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            items.append(
                (f"{name}:{number}", InputError(f"not JSON ({exc.msg} at column {exc.colno})"))
            )
    return len(items) == 1 and not isinstance(items[0][1], InputError), items


CHUNK = 2048  # inputs routed together: one vectorised model pass each, bounded memory


def _decisions(router: Router, items: list[tuple[str, Any]]) -> Iterator[Decision | InputError]:
    """Each item's decision or error, in order. Items are routed a chunk at a time: learned
    models predict a whole chunk at once, and a long batch is printed as it goes instead
    of being held in memory whole."""
    now = SystemClock().now()
    for start in range(0, len(items), CHUNK):
        yield from _chunk(router, items[start : start + CHUNK], now)


def _chunk(
    router: Router, items: list[tuple[str, Any]], now: datetime
) -> Iterator[Decision | InputError]:
    valid: list[tuple[int, EscalationInput]] = []
    results: list[Decision | InputError | None] = [None] * len(items)
    for i, (where, raw) in enumerate(items):
        if isinstance(raw, InputError):
            results[i] = InputError(f"{where}: {raw}")
        elif not isinstance(raw, dict):
            results[i] = InputError(
                f"{where}: an escalation input is a JSON object, not {type(raw).__name__}"
            )
        else:
            try:
                valid.append((i, EscalationInput.model_validate(raw)))
            except ValidationError as exc:
                results[i] = InputError(f"{where}: {describe_validation(exc)}")
    # learned models predict the whole chunk at once; rules run per input
    predictions = router.predict_batch([inp for _, inp in valid])
    for k, (i, inp) in enumerate(valid):
        try:
            results[i] = router.route(inp, now, predictions[k])
        except RoutingInputError as exc:
            results[i] = InputError(f"{items[i][0]}: {exc}")
    for r in results:
        assert r is not None
        yield r


def route_command(
    input_path: str = typer.Argument(
        ..., metavar="INPUT", help="JSON file, array, JSON Lines or -"
    ),
    policy: Path = typer.Option(..., "--policy", "-p", help="Policy file"),
    explain_flag: bool = typer.Option(False, "--explain", help="Print for a person, not JSON"),
    allow_includes_outside: bool = allow_includes_outside_option(),
) -> None:
    """Route escalation inputs with a policy and print the decisions (docs/contracts.md)."""
    router = router_or_exit(policy, allow_includes_outside=allow_includes_outside)
    with batch_gc():  # a batch builds up many objects: see escalade.batching
        failed, total = _route_all(router, input_path, explain_flag)
    if failed:
        typer.echo(f"{failed} of {total} inputs could not be routed", err=True)
        raise typer.Exit(1)


def _route_all(router: Router, input_path: str, explain_flag: bool) -> tuple[int, int]:
    """Read, route and print every input; how many failed and how many there were."""
    try:
        single, items = read_inputs(input_path)
    except InputError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if single:
        decision = next(_decisions(router, items))
        if isinstance(decision, InputError):
            typer.echo(str(decision), err=True)
            raise typer.Exit(1)
        typer.echo(explain(decision) if explain_flag else decision.model_dump_json())
        return 0, 1
    failed = 0
    out = sys.stdout
    for result in _decisions(router, items):
        if isinstance(result, InputError):
            failed += 1
            if explain_flag:
                out.write(f"error: {result}\n\n")
            else:
                out.write(json.dumps({"error": str(result)}) + "\n")
        else:
            out.write((explain(result) + "\n" if explain_flag else result.model_dump_json()) + "\n")
    out.flush()
    return failed, len(items)
