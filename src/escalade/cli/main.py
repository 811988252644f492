"""The ``escalade`` command. Each group lives in its own module and is added here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from escalade.cli.access import audit_app, keys_app, users_app
from escalade.cli.db import db_app
from escalade.cli.policyfile import allow_includes_outside_option
from escalade.cli.route import route_command
from escalade.cli.serve import serve_command
from escalade.cli.simulate import simulate_command
from escalade.cli.triage import triage_app
from escalade.cli.worker import worker
from escalade.policy import PolicyInvalid
from escalade.policy.schema import policy_json_schema

app = typer.Typer(
    name="escalade",
    help="Escalade: support escalation and on-call, with the escalation process as code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Check policies and print their schema.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(triage_app, name="triage")
app.command("route")(route_command)
app.command("serve")(serve_command)
app.command("simulate")(simulate_command)
app.add_typer(db_app, name="db")
app.command("worker")(worker)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


@policy_app.command("check")
def policy_check(
    files: list[Path] = typer.Argument(..., help="Policy files to check"),
    allow_includes_outside: bool = allow_includes_outside_option(),
) -> None:
    """Check policy files; list every problem as FILE:LINE:COL: message (and, on stderr,
    every rule that can never act as FILE:LINE:COL: warning: message; these do not fail)."""
    from escalade.loading import check_files
    from escalade.policy.validate import warn_files

    count = 0
    for problem in check_files(files, allow_includes_outside=allow_includes_outside):
        typer.echo(str(problem))
        count += 1
    warned = 0
    for warning in warn_files(files, allow_includes_outside=allow_includes_outside):
        typer.echo(str(warning), err=True)
        warned += 1
    if warned:
        typer.echo(f"{warned} warning{'s' if warned != 1 else ''}", err=True)
    if count:
        typer.echo(f"{count} problem{'s' if count != 1 else ''} found", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(files)} polic{'ies' if len(files) != 1 else 'y'} valid", err=True)


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the policy language's JSON Schema (for editors)."""
    typer.echo(json.dumps(policy_json_schema(), indent=2))


def main() -> None:
    """Entry point: a person sees what went wrong in one message, never a traceback
    (``ESCALADE_DEBUG=1`` shows it, for a bug report)."""
    try:
        app()
    except PolicyInvalid as exc:
        typer.echo(str(exc), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("ESCALADE_DEBUG"):
            raise
        typer.echo(
            f"escalade: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in Escalade; run again with ESCALADE_DEBUG=1 to see where.",
            err=True,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
