"""``escalade simulate``: dry-run a policy against a scenario (docs/contracts.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from escalade.cli.policyfile import allow_includes_outside_option, router_or_exit
from escalade.simulate import STORES
from escalade.simulate.scenario import ScenarioInvalid, load_scenario


def _policy_path(scenario_file: Path, given: Path | None, named: Path | None) -> Path | None:
    if given is not None:
        return given
    if named is None:
        return None
    if named.is_absolute():
        return named
    beside = scenario_file.parent / named
    return beside if beside.exists() else named


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'at':<21} {'ref':<8} {'type':<26} details"]
    for r in rows:
        details = ", ".join(
            f"{k}={v if not isinstance(v, list) else '; '.join(map(str, v))}"
            for k, v in r.items()
            if k not in ("at", "type", "ref", "reasons", "body")
        )
        lines.append(f"{r['at']:<21} {r.get('ref') or '-':<8} {r['type']:<26} {details}")
        for reason in r.get("reasons", []):
            lines.append(f"{'':<57}- {reason}")
        # a message's words (``show: [messages]``), indented under its line
        lines.extend(f"{'':<57}| {text}" for text in str(r.get("body") or "").splitlines())
    return "\n".join(lines)


def _require_empty(db_url: str) -> None:
    """``--db-url`` takes a database with no escalations yet (the output is everything in
    it), or exits with the reason."""
    from escalade.store.db import SqlStore

    try:
        db = SqlStore(db_url)
        try:
            db.upgrade()
            with db.unit_of_work(readonly=True) as uow:
                held = uow.escalations.find(limit=1)
        finally:
            db.dispose()
    except Exception as exc:  # a bad URL or an unreachable database: say which
        typer.echo(f"--db-url: cannot use '{db_url}': {exc}", err=True)
        raise typer.Exit(1) from None
    if held:
        typer.echo(f"--db-url: '{db_url}' already holds escalations: give a new database", err=True)
        raise typer.Exit(1)


def simulate_command(
    scenario: Path = typer.Argument(..., help="Scenario file (YAML)"),
    policy: Path | None = typer.Option(None, "--policy", "-p", help="Policy (overrides policy:)"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or table"),
    store: str = typer.Option(
        "memory",
        "--store",
        help="The throw-away database: memory (fast) or sqlite (the production SQL); "
        "both print the same",
    ),
    db_url: str | None = typer.Option(
        None,
        "--db-url",
        help="Run on this (new, empty) database and keep it, e.g. for "
        "'escalade triage train --from-db'",
    ),
    allow_includes_outside: bool = allow_includes_outside_option(),
) -> None:
    """Run a scenario on a virtual clock and print what the engine did."""
    # imported here so that other commands start without the engine and the store
    from escalade.batching import batch_gc
    from escalade.simulate.runner import run_scenario

    if fmt not in ("jsonl", "table"):
        typer.echo(f"--format: '{fmt}' is not one of jsonl, table", err=True)
        raise typer.Exit(1)
    if store not in STORES:
        typer.echo(f"--store: '{store}' is not one of {', '.join(STORES)}", err=True)
        raise typer.Exit(1)
    try:
        with batch_gc():
            parsed = load_scenario(scenario)
    except ScenarioInvalid as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    path = _policy_path(scenario, policy, parsed.policy)
    if path is None:
        typer.echo(f"{scenario}: no policy: give --policy or a 'policy:' key", err=True)
        raise typer.Exit(1)
    router = router_or_exit(path, allow_includes_outside=allow_includes_outside)
    if db_url is not None:
        _require_empty(db_url)
    try:
        rows = run_scenario(parsed, router, store=store, db_url=db_url)
    except ScenarioInvalid as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if fmt == "table":
        typer.echo(_table(rows))
    else:
        typer.echo("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
