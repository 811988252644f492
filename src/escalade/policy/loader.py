"""Reading policy files: YAML with positions, ``include:`` of shared parts, and merging.

Every value read keeps the file, line and column it came from, so that any problem found
later (by Pydantic or by the cross-reference checks) can be reported as ``FILE:LINE:COL``.
This module does file I/O and lives at the edge; the models it feeds are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Position:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a policy, where it is and what to do about it."""

    position: Position
    message: str

    def __str__(self) -> str:
        return f"{self.position}: {self.message}"


@dataclass
class Located:
    """A parsed YAML value and where it came from (before merging into plain data)."""

    value: Any  # dict[str, Located] | list[Located] | scalar
    pos: Position


@dataclass
class Document:
    """Plain data of a policy with the position of every path in it."""

    data: Any
    positions: dict[Path_, Position] = field(default_factory=dict)
    root: Position = Position("<policy>", 1, 1)

    def where(self, path: Path_) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.root


class PolicyFileError(Exception):
    """Problems that stop a policy from being read at all."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _pos(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _to_located(
    loader: yaml.SafeLoader, node: yaml.Node, file: str, problems: list[Problem], depth: int = 0
) -> Located:
    if depth > 60:
        problems.append(Problem(_pos(file, node), "nesting is too deep (more than 60 levels)"))
        return Located(None, _pos(file, node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Located] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(
                    Problem(_pos(file, key_node), "a key must be plain text, not a list or map")
                )
                continue
            skey = str(key) if not isinstance(key, bool) else str(key).lower()
            if skey in out:
                problems.append(
                    Problem(_pos(file, key_node), f"duplicate key '{skey}' in the same map")
                )
            out[skey] = _to_located(loader, value_node, file, problems, depth + 1)
        return Located(out, _pos(file, node))
    if isinstance(node, yaml.SequenceNode):
        return Located(
            [_to_located(loader, n, file, problems, depth + 1) for n in node.value],
            _pos(file, node),
        )
    return Located(loader.construct_object(node, deep=True), _pos(file, node))


def parse_yaml(text: str, file: str) -> Located:
    """Parse one YAML document into located values; raise PolicyFileError on bad YAML."""
    loader = yaml.SafeLoader(text)
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyFileError([Problem(Position(file, 1, 1), "the file is empty")])
        located = _to_located(loader, node, file, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        raise PolicyFileError(
            [Problem(Position(file, line, col), f"YAML syntax error: {what}")]
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyFileError([Problem(Position(file, 1, 1), f"YAML error: {exc}")]) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise PolicyFileError(
            [Problem(Position(file, 1, 1), f"YAML value cannot be read: {exc}")]
        ) from None
    finally:
        loader.dispose()
    if problems:
        raise PolicyFileError(problems)
    return located


def _merge(base: Located, over: Located) -> Located:
    """``over`` on top of ``base``: maps merge key by key; lists of items with ``id`` merge
    by id (an item with the same id replaces the base item's keys); other lists replace."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        merged = dict(base.value)
        for key, value in over.value.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return Located(merged, over.pos)
    if isinstance(base.value, list) and isinstance(over.value, list) and _all_have_ids(over):
        items = list(base.value)
        index = {_item_id(it): i for i, it in enumerate(items) if _item_id(it) is not None}
        for it in over.value:
            key = _item_id(it)
            if key in index:
                items[index[key]] = _merge(items[index[key]], it)
            else:
                index[key] = len(items)
                items.append(it)
        return Located(items, over.pos)
    return over


def _item_id(item: Located) -> str | None:
    if isinstance(item.value, dict) and "id" in item.value:
        return str(item.value["id"].value)
    return None


def _all_have_ids(node: Located) -> bool:
    return all(_item_id(it) is not None for it in node.value)


def _flatten(node: Located, path: Path_, positions: dict[Path_, Position]) -> Any:
    positions[path] = node.pos
    if isinstance(node.value, dict):
        return {k: _flatten(v, (*path, k), positions) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_flatten(v, (*path, i), positions) for i, v in enumerate(node.value)]
    return node.value


def _read(path: Path, display: str, stack: tuple[Path, ...]) -> Located:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyFileError([Problem(Position(display, 1, 1), "no such file")]) from None
    except IsADirectoryError:
        raise PolicyFileError(
            [Problem(Position(display, 1, 1), "is a folder, not a file")]
        ) from None
    except OSError as exc:
        raise PolicyFileError(
            [Problem(Position(display, 1, 1), f"cannot read: {exc.strerror}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyFileError(
            [Problem(Position(display, line, 1), "the file is not UTF-8 text")]
        ) from None
    doc = parse_yaml(text, display)
    if not isinstance(doc.value, dict):
        raise PolicyFileError(
            [Problem(doc.pos, "a policy is a YAML map (id:, teams:, categories: …)")]
        )
    return _apply_includes(doc, path, display, stack)


def _apply_includes(doc: Located, path: Path, display: str, stack: tuple[Path, ...]) -> Located:
    include = doc.value.pop("include", None)
    if include is None:
        return doc
    entries = include.value if isinstance(include.value, list) else [include]
    problems: list[Problem] = []
    merged: Located | None = None
    for entry in entries:
        if not isinstance(entry.value, str) or not entry.value.strip():
            problems.append(Problem(entry.pos, "an include entry is a file path"))
            continue
        target = (path.parent / entry.value).resolve()
        if target in stack:
            problems.append(Problem(entry.pos, f"include loop: {entry.value} includes itself"))
            continue
        shown = str(Path(display).parent / entry.value)
        try:
            part = _read(target, shown, (*stack, target))
        except PolicyFileError as exc:
            if any(p.position.file == shown and p.message == "no such file" for p in exc.problems):
                problems.append(Problem(entry.pos, f"included file not found: {entry.value}"))
            else:
                problems.extend(exc.problems)
            continue
        merged = part if merged is None else _merge(merged, part)
    if problems:
        raise PolicyFileError(problems)
    return doc if merged is None else _merge(merged, doc)


def load_document(path: str | Path) -> Document:
    """Read a policy file (and what it includes) into plain data with positions."""
    p = Path(path)
    display = str(path)
    located = _read(p, display, (p.resolve(),))
    positions: dict[Path_, Position] = {}
    data = _flatten(located, (), positions)
    return Document(data=data, positions=positions, root=Position(display, 1, 1))


def document_from_text(text: str, display: str = "<policy>") -> Document:
    """Plain data with positions from YAML text (no includes)."""
    located = parse_yaml(text, display)
    if not isinstance(located.value, dict):
        raise PolicyFileError(
            [Problem(located.pos, "a policy is a YAML map (id:, teams:, categories: …)")]
        )
    if "include" in located.value:
        raise PolicyFileError(
            [Problem(located.value["include"].pos, "include needs a policy read from a file")]
        )
    positions: dict[Path_, Position] = {}
    data = _flatten(located, (), positions)
    return Document(data=data, positions=positions, root=Position(display, 1, 1))
