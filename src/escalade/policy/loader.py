"""Reading policy files: YAML with positions, ``include:`` of shared parts, and merging.

Every value read keeps the file, line and column it came from, so that any problem found
later (by Pydantic or by the cross-reference checks) can be reported as ``FILE:LINE:COL``.
This module does file I/O and lives at the edge; the models it feeds are pure.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from escalade.errors import EscaladeError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Position:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# characters that would break a line (str.splitlines), shown escaped instead
_ONE_LINE = {
    c: ascii(chr(c))[1:-1] for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)
}


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a policy, where it is and what to do about it."""

    position: Position
    message: str

    def __str__(self) -> str:
        # one problem is one line, whatever text the policy put in a name or value
        return f"{self.position}: {self.message}".translate(_ONE_LINE)


@dataclass
class Located:
    """A parsed YAML value and where it came from (before merging into plain data)."""

    value: Any  # dict[str, Located] | list[Located] | scalar
    pos: Position
    keys: dict[str, Position] = field(default_factory=dict)  # where each key of a map is


@dataclass
class Document:
    """Plain data of a policy with the position of every path in it."""

    data: Any
    positions: dict[Path_, Position] = field(default_factory=dict)
    root: Position = Position("<policy>", 1, 1)
    key_positions: dict[Path_, Position] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # found while reading, not fatal

    def where_key(self, path: Path_) -> Position:
        """The position of the key that ends ``path`` (e.g. an unknown key), else ``where``."""
        return self.key_positions.get(tuple(path)) or self.where(path)

    def where(self, path: Path_) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.root


class PolicyFileError(EscaladeError):
    """Problems that stop a policy from being read at all."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _pos(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _construct(loader: yaml.SafeLoader, node: yaml.Node, file: str) -> Any:
    """A scalar's value; a value YAML cannot build (``!!int x``, a 13th month) is a problem
    at that value, not at the top of the file."""
    try:
        return loader.construct_object(node, deep=True)
    except yaml.MarkedYAMLError:
        raise
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise PolicyFileError(
            [Problem(_pos(file, node), f"'{getattr(node, 'value', '')}' cannot be read: {exc}")]
        ) from None


_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_DEPTH = 60
_MAX_NODES = 50_000


def _key_text(node: yaml.Node, file: str, problems: list[Problem]) -> str | None:
    """A map key as the text written: ``on``, ``yes`` and ``1`` stay text (YAML 1.1 would
    make ``on:`` the boolean true)."""
    if not isinstance(node, yaml.ScalarNode):
        problems.append(Problem(_pos(file, node), "a key must be plain text, not a list or map"))
        return None
    if node.tag == "tag:yaml.org,2002:null" and node.value in ("", "~"):
        problems.append(Problem(_pos(file, node), "a key is empty: write a name before ':'"))
        return None
    return str(node.value)


class _Builder:
    """YAML nodes to located values, collecting problems that do not stop reading."""

    def __init__(self, loader: yaml.SafeLoader, file: str, problems: list[Problem]):
        self.loader = loader
        self.file = file
        self.problems = problems
        self.nodes = 0

    def build(self, node: yaml.Node, depth: int = 0) -> Located:
        pos = _pos(self.file, node)
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise PolicyFileError(
                [Problem(pos, f"the file expands to more than {_MAX_NODES} values (aliases?)")]
            )
        if depth > _MAX_DEPTH:
            self.problems.append(
                Problem(pos, f"nesting is too deep (more than {_MAX_DEPTH} levels)")
            )
            return Located(None, pos)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, pos, depth)
        if isinstance(node, yaml.SequenceNode):
            return Located([self.build(n, depth + 1) for n in node.value], pos)
        return Located(_construct(self.loader, node, self.file), pos)

    def _mapping(self, node: yaml.MappingNode, pos: Position, depth: int) -> Located:
        inherited: dict[str, Located] = {}  # from merge keys '<<'; the map's own keys win
        inherited_keys: dict[str, Position] = {}
        own: dict[str, Located] = {}
        own_keys: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        self.problems.append(
                            Problem(
                                _pos(self.file, src),
                                "a merge key '<<' takes a map or a list of maps (e.g. <<: *base)",
                            )
                        )
                        continue
                    part = self.build(src, depth + 1)
                    for k, v in part.value.items():
                        if k not in inherited:  # earlier maps in '<<: [*a, *b]' win
                            inherited[k] = v
                            inherited_keys[k] = part.keys.get(k, v.pos)
                continue
            skey = _key_text(key_node, self.file, self.problems)
            if skey is None:
                continue
            if skey in own:
                self.problems.append(
                    Problem(
                        _pos(self.file, key_node),
                        f"duplicate key '{skey}' in the same map (first at line "
                        f"{own_keys[skey].line}): keep one",
                    )
                )
            own[skey] = self.build(value_node, depth + 1)
            own_keys[skey] = _pos(self.file, key_node)
        return Located({**inherited, **own}, pos, {**inherited_keys, **own_keys})


# libyaml's parser when PyYAML has it (several times faster on large scenario files); the
# pure-Python one words errors as our messages expect, so any file libyaml refuses is read
# again with it to say what is wrong.
_FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def parse_yaml(text: str, file: str, soft: list[Problem] | None = None) -> Located:
    """Parse one YAML document into located values; raise PolicyFileError on bad YAML.

    Problems that still leave a usable value (a duplicate key, an empty key) are added to
    ``soft`` when it is given, so that the rest of the policy is checked too; without it they
    are raised like the others.
    """
    if _FAST_LOADER is not None:
        problems: list[Problem] = []
        fast = None
        try:
            fast = _FAST_LOADER(text)
            node = fast.get_single_node()
            if node is not None:
                located = _Builder(fast, file, problems).build(node)
                if problems and soft is None:
                    raise PolicyFileError(problems)
                if soft is not None:
                    soft.extend(problems)
                return located
        except (
            PolicyFileError,
            yaml.YAMLError,
            ValueError,
            TypeError,
            OverflowError,
            RecursionError,
        ):
            pass  # read it again below, to say what is wrong in our words
        finally:
            if fast is not None:
                fast.dispose()
    return _parse_yaml_slow(text, file, soft)


def _parse_yaml_slow(text: str, file: str, soft: list[Problem] | None) -> Located:
    problems: list[Problem] = []
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        raise PolicyFileError(
            [
                Problem(
                    Position(file, line, col),
                    f"character U+{exc.character:04X} is not allowed in YAML text: remove it",
                )
            ]
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyFileError(
                [Problem(Position(file, 1, 1), "the file is empty: a policy needs at least 'id:'")]
            )
        located = _Builder(loader, file, problems).build(node)
    except PolicyFileError as exc:
        raise PolicyFileError([*problems, *exc.problems]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        if "'\\t'" in what:
            what = "a tab character: YAML indents with spaces, not tabs"
        elif "another document" in what:
            what = "a policy file holds one YAML document: remove the second '---' and after"
        elif exc.context and exc.problem:
            cmark = exc.context_mark
            at = f" at line {cmark.line + 1}" if cmark and cmark.line + 1 != line else ""
            what = f"{exc.problem} ({exc.context}{at})"
        raise PolicyFileError(
            [*problems, Problem(Position(file, line, col), f"YAML syntax error: {what}")]
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyFileError([Problem(Position(file, 1, 1), f"YAML error: {exc}")]) from None
    except RecursionError:
        raise PolicyFileError(
            [Problem(Position(file, 1, 1), "nesting is too deep for a policy")]
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise PolicyFileError(
            [Problem(Position(file, 1, 1), f"YAML value cannot be read: {exc}")]
        ) from None
    finally:
        loader.dispose()
    if problems and soft is None:
        raise PolicyFileError(problems)
    if soft is not None:
        soft.extend(problems)
    return located


def _merge(base: Located, over: Located) -> Located:
    """``over`` on top of ``base``: maps merge key by key; lists of items with ``id`` merge
    by id (an item with the same id replaces the base item's keys); other lists replace."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        merged = dict(base.value)
        for key, value in over.value.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return Located(merged, over.pos, {**base.keys, **over.keys})
    if isinstance(base.value, list) and isinstance(over.value, list) and _all_have_ids(over):
        items = list(base.value)
        index = {_item_id(it): i for i, it in enumerate(items) if _item_id(it) is not None}
        for it in over.value:
            key = _item_id(it)
            if key in index:
                items[index[key]] = _merge(items[index[key]], it)
                del index[key]  # a second item with this id is a duplicate: keep it to report
            else:
                items.append(it)
        return Located(items, over.pos)
    return over


def _item_id(item: Located) -> str | None:
    if isinstance(item.value, dict) and "id" in item.value:
        return str(item.value["id"].value)
    return None


def _all_have_ids(node: Located) -> bool:
    return all(_item_id(it) is not None for it in node.value)


def _flatten(
    node: Located,
    path: Path_,
    positions: dict[Path_, Position],
    key_positions: dict[Path_, Position],
) -> Any:
    positions[path] = node.pos
    if isinstance(node.value, dict):
        for k, pos in node.keys.items():
            key_positions[(*path, k)] = pos
        return {k: _flatten(v, (*path, k), positions, key_positions) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_flatten(v, (*path, i), positions, key_positions) for i, v in enumerate(node.value)]
    return node.value


def _document(located: Located, display: str, soft: list[Problem]) -> Document:
    positions: dict[Path_, Position] = {}
    key_positions: dict[Path_, Position] = {}
    data = _flatten(located, (), positions, key_positions)
    return Document(
        data=data,
        positions=positions,
        root=Position(display, 1, 1),
        key_positions=key_positions,
        problems=soft,
    )


# Limits on what a policy may make Escalade read (docs/policy-language.md, "Includes").
MAX_POLICY_FILE_BYTES = 1_000_000  # one file: the largest example is about 30 kB
MAX_POLICY_TOTAL_BYTES = 4_000_000  # a policy and everything it includes
MAX_POLICY_FILES = 100  # a policy and the files it includes


@dataclass
class ReadLimits:
    """Where includes may come from, and how much one policy may read."""

    root: Path | None  # includes must resolve under this folder (None: anywhere)
    total_bytes: int = 0
    files: int = 0


def _read_bytes(path: Path, display: str, limits: ReadLimits) -> bytes:
    """The bytes of one policy file, counted against the policy's read limits."""
    limits.files += 1
    if limits.files > MAX_POLICY_FILES:
        raise PolicyFileError(
            [
                Problem(
                    Position(display, 1, 1),
                    f"a policy may read at most {MAX_POLICY_FILES} files with its includes",
                )
            ]
        )
    allowed = min(MAX_POLICY_FILE_BYTES, MAX_POLICY_TOTAL_BYTES - limits.total_bytes)
    data = read_regular_file(
        path, display, allowed, what="a policy", too_big=lambda size: _too_big(size, limits)
    )
    limits.total_bytes += len(data)
    return data


def read_regular_file(
    path: Path,
    display: str,
    max_bytes: int,
    *,
    what: str,
    too_big: Callable[[int], str] | None = None,
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; never a device, FIFO or socket.

    ``what`` names the kind of file in the message ("a policy", "a scenario"); ``too_big``
    words the message for a file over the limit. Problems raise ``PolicyFileError``."""

    def problem(message: str) -> PolicyFileError:
        return PolicyFileError([Problem(Position(display, 1, 1), message)])

    def over(size: int) -> PolicyFileError:
        if too_big is not None:
            return problem(too_big(size))
        return problem(f"the file is larger than {max_bytes} bytes, the most {what} file may be")

    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise problem("no such file") from None
    except IsADirectoryError:
        raise problem("is a folder, not a file") from None
    except OSError as exc:
        raise problem(f"cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise problem("is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise problem(
                f"is not a regular file (it is {_file_kind(info.st_mode)}): {what} is read "
                "only from a regular file"
            )
        if info.st_size > max_bytes:
            raise over(info.st_size)
        chunks = []
        size = 0
        while chunk := os.read(fd, 65536):
            size += len(chunk)
            if size > max_bytes:  # it grew while we read
                raise over(size)
            chunks.append(chunk)
    except OSError as exc:
        raise problem(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _too_big(size: int, limits: ReadLimits) -> str:
    if size > MAX_POLICY_FILE_BYTES:
        return (
            f"the file is larger than {MAX_POLICY_FILE_BYTES} bytes, the most a policy file may be"
        )
    return (
        f"a policy and its includes may hold at most {MAX_POLICY_TOTAL_BYTES} bytes together; "
        f"this file makes {limits.total_bytes + size}"
    )


def _file_kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def _read(
    path: Path,
    display: str,
    stack: tuple[tuple[Path, str], ...],
    soft: list[Problem],
    limits: ReadLimits,
) -> Located:
    raw = _read_bytes(path, display, limits)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyFileError(
            [Problem(Position(display, line, 1), "the file is not UTF-8 text")]
        ) from None
    doc = parse_yaml(text, display, soft)
    if not isinstance(doc.value, dict):
        raise PolicyFileError([Problem(doc.pos, _NOT_A_MAP)])
    return _apply_includes(doc, path, display, stack, soft, limits)


_NOT_A_MAP = "a policy is a YAML map of sections (id:, teams:, categories: …), not a list or text"


def _apply_includes(
    doc: Located,
    path: Path,
    display: str,
    stack: tuple[tuple[Path, str], ...],
    soft: list[Problem],
    limits: ReadLimits,
) -> Located:
    include = doc.value.pop("include", None)
    doc.keys.pop("include", None)
    if include is None:
        return doc
    entries = include.value if isinstance(include.value, list) else [include]
    problems: list[Problem] = []
    merged: Located | None = None
    for entry in entries:
        if not isinstance(entry.value, str) or not entry.value.strip():
            problems.append(
                Problem(entry.pos, "an include entry is a file path, e.g. include: [teams.yaml]")
            )
            continue
        target = (path.parent / entry.value).resolve()
        shown = os.path.normpath(Path(display).parent / entry.value)
        if any(target == seen for seen, _ in stack):
            chain = " -> ".join([*(name for _, name in stack), shown])
            problems.append(
                Problem(entry.pos, f"include loop: {chain}; a file cannot include itself")
            )
            continue
        if limits.root is not None and not target.is_relative_to(limits.root):
            problems.append(
                Problem(
                    entry.pos,
                    f"include {entry.value} is outside the policy's folder {limits.root} "
                    f"(it is {target}): keep included parts in that folder or below, or allow "
                    "it with --allow-includes-outside",
                )
            )
            continue
        try:
            part = _read(target, shown, (*stack, (target, shown)), soft, limits)
        except PolicyFileError as exc:
            if any(p.position.file == shown and p.message == "no such file" for p in exc.problems):
                problems.append(
                    Problem(
                        entry.pos, f"included file not found: {entry.value} (looked for {shown})"
                    )
                )
            else:
                problems.extend(exc.problems)
            continue
        merged = part if merged is None else _merge(merged, part)
    if problems:
        raise PolicyFileError(problems)
    return doc if merged is None else _merge(merged, doc)


def load_document(path: str | Path, *, allow_includes_outside: bool = False) -> Document:
    """Read a policy file (and what it includes) into plain data with positions.

    Files are read only if they are regular files within the size limits; includes must
    stay in the policy's folder (or below it) unless ``allow_includes_outside``."""
    p = Path(path)
    display = str(path)
    soft: list[Problem] = []
    limits = ReadLimits(root=None if allow_includes_outside else p.resolve().parent)
    try:
        located = _read(p, display, ((p.resolve(), display),), soft, limits)
    except PolicyFileError as exc:
        raise PolicyFileError([*soft, *exc.problems]) from None
    return _document(located, display, soft)


def document_from_text(text: str, display: str = "<policy>") -> Document:
    """Plain data with positions from YAML text (no includes)."""
    soft: list[Problem] = []
    located = parse_yaml(text, display, soft)
    if not isinstance(located.value, dict):
        raise PolicyFileError([*soft, Problem(located.pos, _NOT_A_MAP)])
    if "include" in located.value:
        raise PolicyFileError(
            [
                *soft,
                Problem(located.value["include"].pos, "include needs a policy read from a file"),
            ]
        )
    return _document(located, display, soft)
