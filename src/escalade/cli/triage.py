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


def _parse_since(text: str) -> datetime:
    """A date (midnight UTC) or a time with its zone."""
    from datetime import UTC, date

    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        t = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--since '{text}' is not a date such as 2026-03-01 (or an ISO 8601 time)")
        raise
    if t.tzinfo is None:
        _fail(f"--since '{text}' has no time zone; add one, e.g. +00:00")
    return t


def _from_db(
    db_url: str | None, since: datetime | None, until: datetime | None = None
) -> list[Any]:
    """The escalations of the database as labelled tickets (``escalade.triage.record``)."""
    from escalade.cli.db import open_store, require_current_schema
    from escalade.store import StoreError
    from escalade.triage.record import recorded

    store = open_store(db_url)
    try:
        require_current_schema(store)
        return recorded(store, since=since, until=until)
    except StoreError as exc:
        _fail(f"error: {exc}")
        raise
    finally:
        store.dispose()


def _period(last: str | None, now: str | None) -> tuple[datetime | None, datetime | None]:
    """[now - last, now) for --last; (None, None) without it."""
    if last is None:
        return None, None
    from escalade.durations import DurationError, parse_duration

    try:
        span = parse_duration(last)
    except DurationError as exc:
        _fail(f"--last: {exc}")
        raise
    end = _parse_now(now)
    return end - span, end


def _db_examples(
    db_url: str | None, label: str, since: datetime | None, until: datetime | None = None
) -> list[Any]:
    """(input, label, text) examples from the database; says how many people corrected."""
    from escalade.triage.data import Example
    from escalade.triage.record import RecordError, labelled

    records = _from_db(db_url, since, until)
    try:
        pairs = labelled(records, label)
    except RecordError as exc:
        _fail(str(exc))
        raise
    corrected = sum(1 for r, _ in pairs if r.final.get(label) != r.routed.get(label))
    typer.echo(
        f"{len(pairs)} escalations from the database; {corrected} with a {label} corrected "
        "by people (reassignment or re-categorisation), labelled as corrected",
        err=True,
    )
    return [Example(input=r.input, label=lab, line=i) for i, (r, lab) in enumerate(pairs, 1)]


DB_URL_HELP = "Database URL (default: $ESCALADE_DATABASE_URL, else sqlite:///./escalade.db)"


@triage_app.command("train")
def train_command(
    history: Path | None = typer.Argument(
        None, help="JSON Lines of escalation inputs, or a CSV (or --from-db)"
    ),
    label: str = typer.Option(..., "--label", help="Field to learn: team, category, priority, …"),
    out: Path = typer.Option(..., "--out", help="Model file to write"),
    from_db: bool = typer.Option(
        False, "--from-db", help="Learn from the escalations in the database (final labels)"
    ),
    db_url: str | None = typer.Option(None, "--db-url", help=DB_URL_HELP),
    since: str | None = typer.Option(None, "--since", help="--from-db: created on or after"),
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
    if (history is None) == (not from_db):
        _fail("give a history file or --from-db (not both)")
    if since is not None and not from_db:
        _fail("--since reads the database: add --from-db")
    try:
        if history is not None:
            examples = read_history(
                history, label, text_column=text_column, label_column=label_column
            )
            source = history.name
        else:
            examples = _db_examples(db_url, label, _parse_since(since) if since else None)
            source = "database" + (f" since {since}" if since else "")
        labels = [e.label for e in examples]
        check_labels(Path(source), labels)
        started = time.perf_counter()
        clf = train(
            [e.input for e in examples],
            labels,
            field=label,
            created_at=created_at,
            seed=seed,
            cv=cv,
            source=source,
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
    labelled: Path | None = typer.Argument(
        None, help="Labelled tickets: JSON Lines or CSV (or --from-db)"
    ),
    label: str = typer.Option(..., "--label", help="Field the labels are for"),
    from_db: bool = typer.Option(
        False, "--from-db", help="Backtest on the escalations in the database (final labels)"
    ),
    db_url: str | None = typer.Option(None, "--db-url", help=DB_URL_HELP),
    last: str | None = typer.Option(
        None, "--last", help="--from-db: escalations created in this period before now, e.g. 4w"
    ),
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
    if (labelled is None) == (not from_db):
        _fail("give a labelled file or --from-db (not both)")
    if last is not None and not from_db:
        _fail("--last reads the database: add --from-db")
    with batch_gc():  # thousands of tickets and decisions: see escalade.batching
        try:
            if labelled is not None:
                examples = read_history(
                    labelled, label, text_column=text_column, label_column=label_column
                )
                source = str(labelled)
            else:
                since, until = _period(last, now)
                examples = _db_examples(db_url, label, since, until)
                source = "the database" + (f" (last {last})" if last else "")
            inputs = [e.input for e in examples]
            predicted: list[str | None]
            if model is not None:
                clf = load_model(model)
                predicted = predict_with_model(clf, inputs, min_confidence)
                title = f"model {model} on {source} ({label}, min confidence {min_confidence:g})"
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
                title = f"policy {policy} on {source} ({label})"
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


@triage_app.command("drift")
def drift_command(
    label: str = typer.Option(..., "--label", help="team or category"),
    policy: Path | None = typer.Option(None, "--policy", help="Route with this policy"),
    model: Path | None = typer.Option(None, "--model", help="Or use this model alone"),
    last: str = typer.Option("12w", "--last", help="Escalations created this long before now"),
    db_url: str | None = typer.Option(None, "--db-url", help=DB_URL_HELP),
    min_confidence: float = typer.Option(0.0, min=0.0, max=1.0, help="--model: abstain under"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
    now: str | None = typer.Option(None, help="The end of the period (ISO 8601)"),
) -> None:
    """Accuracy week by week on the escalations in the database (a model or a policy
    against the final, corrected labels): see when routing starts to drift."""
    from escalade.loading import ModelLoadError, load_classifiers, load_policy
    from escalade.policy import PolicyInvalid
    from escalade.triage.evaluate import predict_with_model, predict_with_policy, report
    from escalade.triage.model import TriageModelError, load_model
    from escalade.triage.record import RecordError, labelled, week_of

    if (policy is None) == (model is None):
        _fail("give exactly one of --policy POLICY or --model MODEL")
    since, until = _period(last, now)
    try:
        pairs = labelled(_from_db(db_url, since, until), label)
        inputs = [r.input for r, _ in pairs]
        if model is not None:
            predicted = predict_with_model(load_model(model), inputs, min_confidence)
        else:
            assert policy is not None
            pol = load_policy(policy)
            predicted = predict_with_policy(
                pol, load_classifiers(pol, policy.parent), inputs, label, until or _parse_now(now)
            )
    except (RecordError, TriageModelError, ModelLoadError, ValueError) as exc:
        _fail(str(exc))
        return
    except PolicyInvalid as exc:
        _fail(str(exc))
        return
    weeks: dict[str, list[int]] = {}
    for i, (r, _) in enumerate(pairs):
        weeks.setdefault(week_of(r.created_at), []).append(i)
    rows = []
    for week in sorted(weeks):
        idx = weeks[week]
        rep = report([pairs[i][1] for i in idx], [predicted[i] for i in idx], ["" for _ in idx])
        rows.append(
            {
                "week": week,
                "count": rep["count"],
                "accuracy": rep["accuracy"],
                "accuracy_overall": rep["accuracy_overall"],
                "abstained": rep["abstained"],
            }
        )
    if fmt is Format.json:
        typer.echo(json.dumps({"label": label, "weeks": rows}, indent=2))
        return
    typer.echo(f"{label} accuracy by week ({'model ' + str(model) if model else policy})")
    typer.echo(f"{'week':<10} {'tickets':>7} {'accuracy':>9} {'overall':>8} {'abstained':>10}")
    for row in rows:
        typer.echo(
            f"{row['week']:<10} {row['count']:>7} {row['accuracy'] * 100:>8.1f}% "
            f"{row['accuracy_overall'] * 100:>7.1f}% {row['abstained'] * 100:>9.1f}%"
        )


@triage_app.command("export")
def export_command(
    label: str = typer.Option(..., "--label", help="team or category"),
    out: Path = typer.Option(..., "--out", help="JSON Lines file to write"),
    from_db: bool = typer.Option(True, "--from-db", help="From the database (the only source)"),
    db_url: str | None = typer.Option(None, "--db-url", help=DB_URL_HELP),
    since: str | None = typer.Option(None, "--since", help="Created on or after this date"),
    last: str | None = typer.Option(None, "--last", help="Or: created this long before now"),
    now: str | None = typer.Option(None, help="--last: the end of the period (ISO 8601)"),
) -> None:
    """Write the database's escalations as labelled tickets (JSON Lines: the input with its
    final label), e.g. as a policy's ``backtest`` file or to keep a training set."""
    del from_db
    if since is not None and last is not None:
        _fail("give --since or --last, not both")
    start, end = _period(last, now) if last else (_parse_since(since) if since else None, None)
    examples = _db_examples(db_url, label, start, end)
    with out.open("w", encoding="utf-8") as f:
        for e in examples:
            row = e.input.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
            row[label] = e.label
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    typer.echo(f"wrote {len(examples)} labelled tickets to {out}")
