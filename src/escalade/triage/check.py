"""Checking the triage models a policy names (``routing.triage``).

A model file must exist and load (paths are relative to the policy file's folder), and
every label it can give must, after ``label_map``, name a team, category or priority of the
policy, whichever field the model decides.
"""

from __future__ import annotations

from pathlib import Path

from escalade.policy.models import Policy, TriageModel
from escalade.triage.model import TriageClassifier, TriageModelError, get_classifier


class BacktestFailed(Exception):
    """A model under the policy's minimum backtest accuracy (or whose backtest cannot run)."""


def backtest(spec: TriageModel, clf: TriageClassifier, policy_dir: Path) -> tuple[float, int]:
    """(accuracy, tickets) of the model on the policy's ``backtest`` tickets, its labels
    mapped with ``label_map`` and under ``min_confidence`` counted as sent to a person
    (accuracy is over the tickets it decided, as ``triage evaluate`` reports it). Raises
    BacktestFailed when the accuracy is under ``min_backtest_accuracy``."""
    from escalade.triage.data import HistoryError, read_history
    from escalade.triage.evaluate import report

    assert spec.backtest is not None and spec.min_backtest_accuracy is not None
    path = model_path(spec.backtest, policy_dir)
    try:
        examples = read_history(path, spec.field)
    except HistoryError as exc:
        raise BacktestFailed(f"backtest tickets cannot be read: {exc}") from None
    preds = clf.predict_many([e.input for e in examples])
    predicted = [
        spec.label_map.get(p.label, p.label) if p.probability >= spec.min_confidence else None
        for p in preds
    ]
    rep = report([e.label for e in examples], predicted, [e.input.text for e in examples])
    accuracy = float(rep["accuracy"])
    if accuracy < spec.min_backtest_accuracy:
        raise BacktestFailed(
            f"model '{spec.model}' reaches {accuracy * 100:.1f} % {spec.field} accuracy on the "
            f"{len(examples)} backtest tickets in {spec.backtest}, under the policy's minimum "
            f"{spec.min_backtest_accuracy * 100:.1f} %: it is not used (retrain it, e.g. "
            "escalade triage train --from-db)"
        )
    return accuracy, len(examples)


def model_path(spec_model: str, policy_dir: Path) -> Path:
    """Where a model named in a policy lives: relative to the policy file's folder."""
    path = Path(spec_model).expanduser()
    return path if path.is_absolute() else policy_dir / path


def check_triage(policy: Policy, policy_dir: Path) -> list[tuple[tuple[str | int, ...], str]]:
    """(path in the policy, message) for each problem with the policy's triage models."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    known = {
        "team": {t.id for t in policy.teams},
        "category": {c.id for c in policy.categories},
        "priority": {p.id for p in policy.priorities},
    }
    for i, spec in enumerate(policy.routing.triage):
        base: tuple[str | int, ...] = ("routing", "triage", i)
        path = model_path(spec.model, policy_dir)
        try:
            clf = get_classifier(path)
        except TriageModelError as exc:
            hint = (
                ""
                if Path(spec.model).is_absolute()
                else f" (a relative path is read from the policy file's folder, {policy_dir})"
            )
            problems.append(((*base, "model"), f"triage model cannot be used: {exc}{hint}"))
            continue
        if spec.min_backtest_accuracy is not None:
            try:
                backtest(spec, clf, policy_dir)
            except BacktestFailed as exc:
                problems.append(((*base, "min_backtest_accuracy"), str(exc)))
        for label in spec.label_map:
            if label not in clf.labels:
                problems.append(
                    (
                        (*base, "label_map", label),
                        f"label_map maps '{label}', which model '{spec.model}' never gives; "
                        f"its labels: {', '.join(clf.labels[:12])}",
                    )
                )
        ids = known[spec.field]
        unknown = []
        for label in clf.labels:
            target = spec.label_map.get(label, label)
            if target not in ids:
                unknown.append(label if target == label else f"{label} → {target}")
        if unknown:
            where = (*base, "label_map") if spec.label_map else (*base, "model")
            hint = (
                f"; the policy's {spec.field} ids: {', '.join(sorted(ids)[:12])}"
                if ids
                else (f"; the policy defines no {spec.field}")
            )
            problems.append(
                (
                    where,
                    f"model '{spec.model}' gives {spec.field} label"
                    f"{'s' if len(unknown) != 1 else ''} {', '.join(repr(u) for u in unknown[:12])}"
                    f"{' …' if len(unknown) > 12 else ''} that "
                    f"name{'s' if len(unknown) == 1 else ''} no {spec.field} of the policy: "
                    f"map them with label_map{hint}",
                )
            )
    return problems
