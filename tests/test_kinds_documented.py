"""docs/engine.md lists every timer kind and every timeline event kind, and nothing else:
the enums in ``escalade.escalation.kinds`` and the operator's documentation stay in step."""

from __future__ import annotations

import re
from pathlib import Path

from escalade.escalation.kinds import EventKind, TimerKind

DOC = Path(__file__).resolve().parents[1] / "docs" / "engine.md"


def _first_cells(heading: str) -> set[str]:
    """Backticked names in the first cell of every table row under a ``##`` heading."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        names.update(re.findall(r"`([a-z_.]+)`", first))
    return names


def test_every_timer_kind_is_documented_and_nothing_more() -> None:
    assert _first_cells("Timers") == {k.value for k in TimerKind}


def test_every_event_kind_is_documented_and_nothing_more() -> None:
    assert _first_cells("Timeline and simulate events") == {k.value for k in EventKind}
