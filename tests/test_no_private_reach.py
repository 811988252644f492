"""No module reaches into another module's private members: in ``src/``, ``x._name`` is
``self._name`` / ``cls._name``, or a private attribute that the same module defines (a
helper class of the store it belongs to). A use case talks to the run-time world through
``Effects``, never through another object's internals. Names libraries document as
public API despite the underscore are listed."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "escalade"

LIBRARY_API = {
    "_mapping",  # SQLAlchemy's Row._mapping
    "_asdict",  # namedtuple
    "_replace",  # namedtuple
    "_fields",  # namedtuple
}


def _reaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "cls")
    }
    own |= {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign | ast.Assign)
        for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in LIBRARY_API | own:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: .{name}")
    return found


def test_no_module_reaches_into_private_members() -> None:
    found = [hit for path in sorted(SRC.rglob("*.py")) for hit in _reaches(path)]
    assert found == []
