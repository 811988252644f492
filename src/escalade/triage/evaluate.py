"""Measuring triage on labelled tickets: a model alone, or a whole policy through the router.

A ticket is *abstained* when nobody decided it automatically (the model was under its
minimum confidence, or the router flagged ``needs_triage``): it goes to a person. Accuracy,
macro-F1, precision and recall are computed over the tickets that were decided; the share
abstained is reported beside them, and ``accuracy_overall`` counts an abstention as a miss.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from escalade.policy.models import Policy
from escalade.routing.models import EscalationInput
from escalade.routing.router import Predictor
from escalade.triage.model import TriageClassifier

WORST = 10
EXAMPLES = 3
FIELDS = ("category", "team", "priority", "level")


def predict_with_model(
    clf: TriageClassifier, inputs: Sequence[EscalationInput], min_confidence: float = 0.0
) -> list[str | None]:
    """The model's label for each input, or None where it is under ``min_confidence``."""
    return [p.label if p.probability >= min_confidence else None for p in clf.predict_many(inputs)]


def predict_with_policy(
    policy: Policy,
    classifiers: Mapping[str, Predictor],
    inputs: Sequence[EscalationInput],
    field: str,
    now: datetime,
) -> list[str | None]:
    """What the real router decides for ``field``; None where it sends the ticket to a person."""
    from escalade.routing.router import route_many

    if field not in FIELDS:
        raise ValueError(
            f"with --policy the label must be one of {', '.join(FIELDS)}, not '{field}'"
        )
    decisions = route_many(policy, inputs, now, classifiers)
    out: list[str | None] = []
    for d in decisions:
        value = getattr(d, field)
        out.append(None if d.needs_triage or not value else str(value))
    return out


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def report(
    truths: Sequence[str], predicted: Sequence[str | None], texts: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label precision/recall, confusion and worst confusions."""
    if not (len(truths) == len(predicted) == len(texts)):
        raise ValueError("truths, predictions and texts must be as many")
    count = len(truths)
    decided = [(t, p) for t, p in zip(truths, predicted, strict=True) if p is not None]
    correct = sum(1 for t, p in decided if t == p)
    labels = sorted(set(truths) | {p for _, p in decided})
    confusion = {t: dict.fromkeys(labels, 0) for t in labels}
    for t, p in decided:
        confusion[t][p] += 1
    abstained_by = Counter(t for t, p in zip(truths, predicted, strict=True) if p is None)
    per_label: dict[str, dict[str, float | int]] = {}
    f1s = []
    for label in labels:
        tp = confusion[label][label]
        predicted_as = sum(confusion[t][label] for t in labels)
        actual = sum(confusion[label].values())
        precision = _ratio(tp, predicted_as)
        recall = _ratio(tp, actual)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_label[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": actual + abstained_by[label],
            "abstained": abstained_by[label],
        }
    pairs = Counter((t, p) for t, p in decided if t != p)
    examples: dict[tuple[str, str], list[str]] = {}
    for t, guess, text in zip(truths, predicted, texts, strict=True):
        if guess is not None and t != guess:
            bucket = examples.setdefault((t, guess), [])
            if len(bucket) < EXAMPLES:
                bucket.append(text[:200])
    worst = [
        {"true": t, "predicted": p, "count": n, "examples": examples[(t, p)]}
        for (t, p), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:WORST]
    ]
    n_abstained = count - len(decided)
    return {
        "count": count,
        "decided": len(decided),
        "accuracy": round(_ratio(correct, len(decided)), 4),
        "accuracy_overall": round(_ratio(correct, count), 4),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "abstained": round(_ratio(n_abstained, count), 4),
        "abstained_count": n_abstained,
        "per_label": per_label,
        "confusion": confusion,
        "worst_confusions": worst,
    }


def format_table(rep: dict[str, Any], title: str) -> str:
    """The report for a person: figures, per-label table, confusion matrix, worst mix-ups."""
    lines = [
        title,
        f"tickets: {rep['count']}   decided: {rep['decided']}   "
        f"sent to a person (abstained): {rep['abstained'] * 100:.1f}%",
        f"accuracy (decided): {rep['accuracy'] * 100:.1f}%   "
        f"accuracy (all, abstained = wrong): {rep['accuracy_overall'] * 100:.1f}%   "
        f"macro-F1: {rep['macro_f1']:.3f}",
        "",
    ]
    labels = list(rep["per_label"])
    width = max([len("label"), *(len(lb) for lb in labels)])
    lines.append(f"{'label':<{width}}  precision  recall     f1  support  abstained")
    for lb in labels:
        row = rep["per_label"][lb]
        lines.append(
            f"{lb:<{width}}  {row['precision']:>9.3f}  {row['recall']:>6.3f}  {row['f1']:>5.3f}  "
            f"{row['support']:>7}  {row['abstained']:>9}"
        )
    if len(labels) <= 15:
        lines += ["", "confusion (rows: true label, columns: decided label)"]
        short = [lb[:8] for lb in labels]
        cw = max(5, *(len(s) for s in short))
        lines.append(" " * width + "  " + " ".join(f"{s:>{cw}}" for s in short))
        for lb in labels:
            cells = " ".join(f"{rep['confusion'][lb][c]:>{cw}}" for c in labels)
            lines.append(f"{lb:<{width}}  {cells}")
    else:
        lines += ["", f"confusion: {len(labels)} labels, too many to print (use --format json)"]
    if rep["worst_confusions"]:
        lines += ["", "worst confusions"]
        for w in rep["worst_confusions"]:
            lines.append(f"  {w['count']:>4} × {w['true']} decided as {w['predicted']}")
            for ex in w["examples"]:
                lines.append(f"         e.g. {ex!r}")
    return "\n".join(lines)
