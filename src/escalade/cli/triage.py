"""``escalade triage``: train, inspect and evaluate learned triage models."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from escalade.clock import SystemClock

triage_app = typer.Typer(
    help="Learned triage: train a model on ticket history, evaluate it or a whole policy.",
    no_args_is_help=True,
)


class Format(StrEnum):
    table = "table"
    json = "json"


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return SystemClock().now()
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--now '{text}' is not an ISO 8601 time such as 2024-05-01T09:00:00+00:00")
        raise
    if t.tzinfo is None:
        _fail(f"--now '{text}' has no time zone; add one, e.g. +00:00")
    return t


@triage_app.command("train")
def train_command(
    history: Path = typer.Argument(..., help="JSON Lines of escalation inputs, or a CSV"),
    label: str = typer.Option(..., "--label", help="Field to learn: team, category, priority, …"),
    out: Path = typer.Option(..., "--out", help="Model file to write"),
    text_column: str | None = typer.Option(None, help="CSV: column holding the ticket text"),
    label_column: str | None = typer.Option(None, help="CSV: column holding the label"),
    seed: int = typer.Option(0, help="Random seed (same data + seed = same model)"),
    cv: int | None = typer.Option(None, "--cv", help="Print K-fold cross-validated accuracy"),
    now: str | None = typer.Option(None, help="Training time to record (ISO 8601)"),
) -> None:
    """Train a triage model on labelled ticket history and save it."""
    from escalade.triage.data import HistoryError, check_labels, read_history
    from escalade.triage.model import TriageModelError, save_model, train

    created_at = _parse_now(now)
    try:
        examples = read_history(history, label, text_column=text_column, label_column=label_column)
        labels = [e.label for e in examples]
        check_labels(history, labels)
        started = time.perf_counter()
        clf = train(
            [e.input for e in examples],
            labels,
            field=label,
            created_at=created_at,
            seed=seed,
            cv=cv,
            source=history.name,
        )
        took = time.perf_counter() - started
        path = save_model(clf, out)
    except (HistoryError, TriageModelError) as exc:
        _fail(str(exc))
        return
    counts = Counter(labels)
    typer.echo(
        f"trained '{label}' on {len(examples)} tickets, {len(counts)} labels "
        f"in {took:.1f}s; saved {path} ({path.stat().st_size / 1024:.0f} KiB)"
    )
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]:
        typer.echo(f"  {name}: {n}")
    if len(counts) > 20:
        typer.echo(f"  … and {len(counts) - 20} more labels")
    cv_info = clf.metadata.get("cv")
    if cv_info:
        folds = ", ".join(f"{a * 100:.1f}%" for a in cv_info["fold_accuracy"])
        typer.echo(
            f"cross-validated accuracy ({cv_info['folds']} folds): "
            f"{cv_info['accuracy'] * 100:.1f}% ({folds})"
        )


@triage_app.command("info")
def info_command(model: Path = typer.Argument(..., help="Model file")) -> None:
    """Check a model file and print its metadata as JSON."""
    from escalade.triage.model import TriageModelError, load_model

    try:
        clf = load_model(model)
    except TriageModelError as exc:
        _fail(str(exc))
        return
    typer.echo(json.dumps(clf.metadata, indent=2, sort_keys=True))


@triage_app.command("evaluate")
def evaluate_command(
    labelled: Path = typer.Argument(..., help="Labelled tickets: JSON Lines or CSV"),
    label: str = typer.Option(..., "--label", help="Field the labels are for"),
    policy: Path | None = typer.Option(None, "--policy", help="Route with this policy"),
    model: Path | None = typer.Option(None, "--model", help="Or use this model alone"),
    min_confidence: float = typer.Option(
        0.0, min=0.0, max=1.0, help="--model: send tickets under this probability to a person"
    ),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
    text_column: str | None = typer.Option(None, help="CSV: column holding the ticket text"),
    label_column: str | None = typer.Option(None, help="CSV: column holding the label"),
    now: str | None = typer.Option(None, help="--policy: routing time (ISO 8601)"),
) -> None:
    """Measure a model or a policy on labelled tickets (accuracy, F1, confusions)."""
    from escalade.batching import batch_gc
    from escalade.loading import ModelLoadError, load_classifiers, load_policy
    from escalade.policy import PolicyInvalid
    from escalade.triage.data import HistoryError, read_history
    from escalade.triage.evaluate import format_table, predict_with_model, report
    from escalade.triage.model import TriageModelError, load_model

    if (policy is None) == (model is None):
        _fail("give exactly one of --policy POLICY or --model MODEL")
    with batch_gc():  # thousands of tickets and decisions: see escalade.batching
        try:
            examples = read_history(
                labelled, label, text_column=text_column, label_column=label_column
            )
            inputs = [e.input for e in examples]
            predicted: list[str | None]
            if model is not None:
                clf = load_model(model)
                predicted = predict_with_model(clf, inputs, min_confidence)
                title = f"model {model} on {labelled} ({label}, min confidence {min_confidence:g})"
            else:
                assert policy is not None
                from escalade.triage.evaluate import predict_with_policy

                pol = load_policy(policy)
                try:
                    predicted = predict_with_policy(
                        pol, load_classifiers(pol, policy.parent), inputs, label, _parse_now(now)
                    )
                except ModelLoadError as exc:
                    _fail(str(exc))
                    return
                title = f"policy {policy} on {labelled} ({label})"
        except (HistoryError, TriageModelError, ValueError) as exc:
            _fail(str(exc))
            return
        except PolicyInvalid as exc:
            _fail(str(exc))
            return
    rep: dict[str, Any] = report(
        [e.label for e in examples], predicted, [e.input.text for e in examples]
    )
    if fmt is Format.json:
        typer.echo(json.dumps(rep, indent=2))
    else:
        typer.echo(format_table(rep, title))
