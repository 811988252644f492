"""Reading labelled ticket history: JSON Lines of escalation inputs, or a CSV export.

Every problem names the file and the line it is on, so that a support lead can fix the
export: empty file, a line that is not JSON or not UTF-8, a missing label.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from escalade.errors import EscaladeError
from escalade.routing.models import EscalationInput


class HistoryError(EscaladeError):
    """A ticket history that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    """One labelled ticket: the input, its label and the line it came from."""

    input: EscalationInput
    label: str
    line: int


_INPUT_KEYS = set(EscalationInput.model_fields)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise HistoryError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {col}); "
            "save the file as UTF-8"
        ) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise HistoryError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _label_value(obj: dict[str, Any], field: str) -> tuple[Any, bool]:
    """The label under ``field`` (``a.b`` reaches into nested objects; ``fields`` too)."""
    if field in obj:
        return obj[field], True
    parts = field.split(".")
    value: Any = obj
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            break
    else:
        return value, False
    fields = obj.get("fields")
    if isinstance(fields, dict) and field in fields:
        return fields[field], False
    return None, False


def _label_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _input_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def read_jsonl(path: Path, label_field: str, *, require_label: bool = True) -> list[Example]:
    """Examples from JSON Lines: one escalation input per line, with the label field.

    The label key is taken out of the input (so that ``category`` as a label is not also
    given to routing); keys that are not escalation-input keys (ticket ids, ``team``, …)
    are ignored.
    """
    text = _decode(path, _read_bytes(path))
    examples: list[Example] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise HistoryError(
                f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        if not isinstance(obj, dict):
            raise HistoryError(f"{path}:{n}: expected a JSON object (an escalation input)")
        value, top_level = _label_value(obj, label_field)
        label = _label_text(value)
        if label is None and require_label:
            what = "is missing" if value is None else f"is not a label ({value!r})"
            raise HistoryError(
                f"{path}:{n}: the label field '{label_field}' {what}; every line needs it"
            )
        data = {
            k: v
            for k, v in obj.items()
            if k in _INPUT_KEYS and not (top_level and k == label_field)
        }
        try:
            inp = EscalationInput.model_validate(data)
        except ValidationError as exc:
            raise HistoryError(
                f"{path}:{n}: invalid escalation input: {_input_error(exc)}"
            ) from None
        examples.append(Example(inp, label or "", n))
    if not examples:
        raise HistoryError(f"{path}: empty history: no tickets in the file")
    return examples


def read_csv(
    path: Path, text_column: str, label_column: str, *, require_label: bool = True
) -> list[Example]:
    """Examples from a CSV export: the text column becomes the description."""
    text = _decode(path, _read_bytes(path))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise HistoryError(f"{path}:1: not a CSV header: {exc}") from None
    if not header:
        raise HistoryError(f"{path}: empty history: no header and no tickets")
    for column, option in ((text_column, "--text-column"), (label_column, "--label-column")):
        if column not in header:
            raise HistoryError(
                f"{path}:1: no column '{column}' (give it with {option}); "
                f"columns: {', '.join(header)}"
            )
    examples: list[Example] = []
    try:
        for row in reader:
            n = reader.line_num
            body = (row.get(text_column) or "").strip()
            label = _label_text(row.get(label_column))
            if label is None and require_label:
                raise HistoryError(f"{path}:{n}: the label column '{label_column}' is empty")
            if not body and label is None:
                continue
            try:
                inp = EscalationInput(description=body)
            except ValidationError as exc:
                raise HistoryError(f"{path}:{n}: {_input_error(exc)}") from None
            examples.append(Example(inp, label or "", n))
    except csv.Error as exc:
        raise HistoryError(f"{path}:{reader.line_num}: bad CSV: {exc}") from None
    if not examples:
        raise HistoryError(f"{path}: empty history: a header but no tickets")
    return examples


def read_history(
    path: str | Path,
    label_field: str,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    require_label: bool = True,
) -> list[Example]:
    """Labelled examples from JSON Lines, or from CSV (``.csv`` or a ``--text-column``)."""
    p = Path(path)
    if text_column is not None or label_column is not None or p.suffix.lower() == ".csv":
        return read_csv(
            p, text_column or "text", label_column or label_field, require_label=require_label
        )
    return read_jsonl(p, label_field, require_label=require_label)


def check_labels(path: str | Path, labels: Sequence[str]) -> None:
    """A model needs at least two labels to choose between."""
    distinct = sorted(set(labels))
    if len(distinct) < 2:
        only = f"'{distinct[0]}'" if distinct else "none"
        raise HistoryError(
            f"{path}: every ticket has the same label ({only}); a model needs at least two "
            "labels to choose between"
        )
