"""Property tests: whatever the input, ``policy check`` answers with problems, not a crash.

Random bytes and text, random nested structures dumped to YAML, and mutations of a valid
policy (lines deleted, swapped or cut, values swapped, random keys) must all give exit
code 0 or 1, no traceback, and only lines of the form ``FILE:LINE:COL: message``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.policy.loader import PolicyFileError, document_from_text
from escalade.policy.validate import check_document
from soak import scaled

CORPUS = Path(__file__).parent / "policy_corpus"
VALID_TEXT = (CORPUS / "valid" / "full.yaml").read_text("utf-8")
VALID_LINES = VALID_TEXT.splitlines()
VALID_DATA = yaml.safe_load(VALID_TEXT)
LINE = re.compile(r"^.+:\d+:\d+: .+$")

FUZZ = settings(
    max_examples=scaled(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check_bytes(raw: bytes, tmp: Path) -> None:
    """Run the real CLI on ``raw`` and assert it behaved."""
    target = tmp / "policy.yaml"
    target.write_bytes(raw)
    result = CliRunner().invoke(app, ["policy", "check", str(target)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), result.output
    lines = result.stdout.splitlines()
    assert (result.exit_code == 1) == bool(lines)
    for line in lines:
        assert LINE.match(line), line
        assert line.startswith(f"{target}:"), line


# --------------------------------------------------------------------------- raw input


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw: bytes, tmp_path: Path) -> None:
    check_bytes(raw, tmp_path)


YAMLISH = st.text(
    alphabet=st.sampled_from([*"abc:- \n\t{}[],&*!|>'\"#%@`?~<=\\0123456789.", "\u00e9"]),
    max_size=200,
)


@FUZZ
@given(text=st.one_of(st.text(max_size=200), YAMLISH))
def test_random_text(text: str, tmp_path: Path) -> None:
    check_bytes(text.encode("utf-8", "surrogatepass"), tmp_path)


# --------------------------------------------------------------------------- structures

KEYS = st.sampled_from(
    [
        "id",
        "teams",
        "categories",
        "owner",
        "path",
        "calendars",
        "timezone",
        "hours",
        "priorities",
        "response",
        "target",
        "maximum",
        "ladders",
        "steps",
        "after",
        "notify",
        "role",
        "schedule",
        "authority",
        "actions",
        "bands",
        "from",
        "over",
        "below",
        "through",
        "include",
        "members",
        "people",
        "levels",
        "routing",
        "rules",
        "when",
        "then",
        "on",
        "<<",
    ]
) | st.text(min_size=1, max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["15m", "1h", "24/7", "UTC", "Nowhere/Zone", "P1", "support", "", "0"])
    | st.text(max_size=10)
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)


@FUZZ
@given(tree=st.dictionaries(KEYS, TREES, max_size=6) | TREES)
def test_random_structures(tree: Any, tmp_path: Path) -> None:
    check_bytes(yaml.safe_dump(tree, allow_unicode=True).encode("utf-8"), tmp_path)


# --------------------------------------------------------------------------- mutations


@st.composite
def line_mutations(draw: st.DrawFn) -> str:
    lines = list(VALID_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "swap", "cut", "duplicate", "indent", "dedent"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        else:
            lines[i] = lines[i][2:]
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=line_mutations())
def test_mutated_lines(text: str, tmp_path: Path) -> None:
    check_bytes(text.encode("utf-8"), tmp_path)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


ALL_PATHS = [p for p in _paths(VALID_DATA) if p]


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def value_mutations(draw: st.DrawFn) -> Any:
    data = yaml.safe_load(VALID_TEXT)
    for _ in range(draw(st.integers(1, 4))):
        live = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(live))
        op = draw(st.sampled_from(["swap", "replace", "delete", "add_key"]))
        if op == "swap":
            other = draw(st.sampled_from(live))
            if other[: len(path)] != path and path[: len(other)] != other:
                a, b = _get(data, path), _get(data, other)
                _set(data, path, b)
                _set(data, other, a)
        elif op == "replace":
            _set(data, path, draw(TREES))
        elif op == "delete":
            parent = _get(data, path[:-1])
            del parent[path[-1]]
        else:
            target = _get(data, path)
            if isinstance(target, dict):
                target[draw(KEYS)] = draw(SCALARS)
    return data


@FUZZ
@given(data=value_mutations())
def test_mutated_values(data: Any, tmp_path: Path) -> None:
    check_bytes(yaml.safe_dump(data, allow_unicode=True).encode("utf-8"), tmp_path)


# --------------------------------------------------------------------------- library level


@settings(max_examples=scaled(200), deadline=None)
@given(text=st.one_of(line_mutations(), YAMLISH))
def test_library_never_raises_anything_else(text: str) -> None:
    """The library API gives problems (or PolicyFileError), never another exception."""
    try:
        problems = check_document(document_from_text(text, "p.yaml"))
    except PolicyFileError as exc:
        problems = exc.problems
    for problem in problems:
        assert LINE.match(str(problem)), str(problem)
        assert "\n" not in str(problem)
