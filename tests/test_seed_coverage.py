"""docs/SEED-COVERAGE.md keeps its word: every ✅ or ◐ row names proof that exists and
mentions the rule.

The table has one row per checkable seed rule::

    | id | seed | rule | policy | proof | mentions | ✓ | note |

The rules checked here (also written at the top of SEED-COVERAGE.md):

- ``id`` is ``SSS-N`` (seed number, row number), unique; ``seed`` names the seed's lines as
  ``SSS:L`` / ``SSS:L-M``, more joined by ``,`` (``000:100,112-113``), inside that seed
  file when the specification folder ``../shared/seeds`` is there;
- ``policy`` starts with an example policy file that exists (or is ``—``);
- ``proof`` is ``—`` or one or more of ``tests/FILE.py::test_name`` (the test function
  must exist in that file) and ``examples/scenarios/NAME.yaml`` (with its
  ``.expected.jsonl``), joined by ``<br>``;
- a ✅ row names at least one proof; a ✅ or ◐ row with proof names at least one
  ``mentions`` keyword, and **every** keyword appears (ignoring case) in **every** proof it
  names: in a test, the function's own source with its decorators and the module-level
  constants it uses; in a scenario, the scenario file or its expected output;
- a ◐ or ✗ row has a note (the interpretation, or the change it needs);
- the per-seed counts in the summary table equal the rows.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "SEED-COVERAGE.md"
SEEDS = ROOT.parent / "shared" / "seeds"
STATUSES = ("✅", "◐", "✗")
_ID = re.compile(r"^(\d{3})-(\d+)$")
_SEED = re.compile(r"^(\d{3}):(\d+)(?:-(\d+))?$")
_TEST = re.compile(r"^(tests/[\w/]+\.py)::(\w+)$")
_SCENARIO = re.compile(r"^(examples/scenarios/[\w.-]+)\.yaml$")


@dataclass(frozen=True)
class Row:
    line: int
    id: str
    seed: str
    rule: str
    policy: str
    proof: tuple[str, ...]
    mentions: tuple[str, ...]
    status: str
    note: str


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _strip(cell: str) -> str:
    return cell.replace("`", "").strip()


def parse(text: str) -> list[Row]:
    """The rule rows of the coverage table (rows whose first cell is an id ``SSS-N``)."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if not cells or not _ID.match(_strip(cells[0])):
            continue
        if len(cells) != 8:
            raise AssertionError(f"line {n}: a rule row has 8 cells, not {len(cells)}: {line}")
        rid, seed, rule, policy, proof, mentions, status, note = cells
        proofs = tuple(
            p for p in (_strip(x) for x in re.split(r"<br>|,\s*", proof)) if p and p != "—"
        )
        words = tuple(w for w in (_strip(x) for x in mentions.split(",")) if w and w != "—")
        rows.append(
            Row(n, _strip(rid), _strip(seed), rule, _strip(policy), proofs, words, status, note)
        )
    return rows


@cache
def _seed_lengths() -> dict[str, int]:
    if not SEEDS.is_dir():
        return {}
    return {p.name[:3]: len(p.read_text("utf-8").splitlines()) for p in SEEDS.glob("*.txt")}


@cache
def _test_text(file: str, name: str) -> str | None:
    """The test function's source with its decorators, and the module-level constants it
    names (parametrize tables kept at the top of the file); None when it does not exist."""
    path = ROOT / file
    if not path.is_file():
        return None
    source = path.read_text("utf-8")
    tree = ast.parse(source)
    constants: dict[str, str] = {}
    found = None
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    constants[t.id] = ast.get_source_segment(source, node) or ""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            end = node.end_lineno or node.lineno
            found = "\n".join(source.splitlines()[start - 1 : end])
    if found is None:
        return None
    used = [text for cname, text in constants.items() if re.search(rf"\b{cname}\b", found)]
    return "\n".join([found, *used])


def _scenario_text(stem: str) -> str | None:
    scenario, expected = ROOT / f"{stem}.yaml", ROOT / f"{stem}.expected.jsonl"
    if not scenario.is_file() or not expected.is_file():
        return None
    return scenario.read_text("utf-8") + "\n" + expected.read_text("utf-8")


def proof_text(proof: str) -> str | None:
    """What a proof says, or None when it does not exist (or is not a proof's shape)."""
    if m := _TEST.match(proof):
        return _test_text(m.group(1), m.group(2))
    if m := _SCENARIO.match(proof):
        return _scenario_text(m.group(1))
    return None


def row_problems(row: Row) -> list[str]:
    """Everything wrong with one row (empty when it keeps its word)."""
    out: list[str] = []
    m = _ID.match(row.id)
    if not m:
        return [f"id '{row.id}' is not SSS-N"]
    seed = m.group(1)
    for part in (p.strip() for p in row.seed.split(",")):
        if re.match(r"^\d+(-\d+)?$", part):  # more lines of the same seed: 000:100,112
            part = f"{seed}:{part}"
        s = _SEED.match(part)
        if not s:
            out.append(f"seed '{part}' is not SSS:L or SSS:L-M")
            continue
        if s.group(1) != m.group(1):
            out.append(f"seed '{part}' is not seed {m.group(1)}")
        first, last = int(s.group(2)), int(s.group(3) or s.group(2))
        length = _seed_lengths().get(s.group(1))
        if first < 1 or last < first or (length is not None and last > length):
            out.append(f"seed lines '{part}' are not lines of seed {s.group(1)}")
    if row.policy != "—":
        file = row.policy.split()[0]
        if not (ROOT / "examples" / "policies" / file).is_file():
            out.append(f"policy file '{file}' does not exist")
    if row.status not in STATUSES:
        out.append(f"status '{row.status}' is not one of {', '.join(STATUSES)}")
    if row.status == "✅" and not row.proof:
        out.append("a ✅ row names no proof")
    if row.status in ("◐", "✗") and not row.note.strip():
        out.append(f"a {row.status} row needs a note")
    if row.proof and row.status in ("✅", "◐") and not row.mentions:
        out.append("a row with proof names no keyword the proof must mention")
    for proof in row.proof:
        text = proof_text(proof)
        if text is None:
            out.append(f"proof '{proof}' does not exist")
            continue
        low = text.lower()
        for word in row.mentions:
            if word.lower() not in low:
                out.append(f"proof '{proof}' does not mention '{word}'")
    return out


def summary_counts(text: str) -> dict[str, tuple[int, int, int]]:
    """The summary table: ``| 000 | ✅ n | ◐ n | ✗ n |`` per seed."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*(\d{3})\s*\|\s*✅ (\d+)\s*\|\s*◐ (\d+)\s*\|\s*✗ (\d+)\s*\|", line)
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
    return out


ROWS = parse(DOC.read_text("utf-8"))


def test_the_table_has_every_seed_and_many_rules() -> None:
    seeds = Counter(r.id[:3] for r in ROWS)
    assert set(seeds) == {"000", "001", "002", "003", "004"}
    assert len(ROWS) >= 150
    ids = Counter(r.id for r in ROWS)
    assert [i for i, n in ids.items() if n > 1] == []


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_each_row_keeps_its_word(row: Row) -> None:
    assert row_problems(row) == [], f"SEED-COVERAGE.md line {row.line}"


def test_the_summary_counts_the_rows() -> None:
    counted: dict[str, list[int]] = {}
    for r in ROWS:
        counted.setdefault(r.id[:3], [0, 0, 0])[STATUSES.index(r.status)] += 1
    assert summary_counts(DOC.read_text("utf-8")) == {
        k: tuple(v) for k, v in sorted(counted.items())
    }


# ---------------------------------------------------------------- the checker itself fails


def _row(**change: object) -> Row:
    base = {
        "line": 1,
        "id": "000-1",
        "seed": "000:30",
        "rule": "L1 response 4 hours",
        "policy": "platform-operations.yaml levels[L1].response",
        "proof": ("tests/test_seed_tables.py::test_000_escalation_levels",),
        "mentions": ("L1", "4h"),
        "status": "✅",
        "note": "",
    }
    base.update(change)
    return Row(**base)  # type: ignore[arg-type]


def test_a_good_row_passes() -> None:
    assert row_problems(_row()) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"proof": ()}, "a ✅ row names no proof"),
        ({"proof": ("tests/test_seed_tables.py::test_no_such_test",)}, "does not exist"),
        ({"proof": ("tests/no_such_file.py::test_x",)}, "does not exist"),
        ({"proof": ("examples/scenarios/no-such-scenario.yaml",)}, "does not exist"),
        ({"proof": ("tests/test_seed_tables.py",)}, "does not exist"),
        ({"mentions": ("L1", "status page")}, "does not mention 'status page'"),
        (
            {"proof": ("examples/scenarios/sev1-outage-night.yaml",), "mentions": ("SEV-2",)},
            "does not mention 'SEV-2'",
        ),
        ({"mentions": ()}, "names no keyword"),
        ({"status": "◐", "note": ""}, "needs a note"),
        ({"status": "✗", "note": " "}, "needs a note"),
        ({"status": "ok"}, "is not one of"),
        ({"seed": "000:9999"}, "are not lines of seed 000"),
        ({"seed": "001:30"}, "is not seed 000"),
        ({"policy": "no-such-policy.yaml x"}, "does not exist"),
    ],
)
def test_a_broken_row_fails(change: dict[str, object], problem: str) -> None:
    if "9999" in str(change.get("seed", "")) and not _seed_lengths():
        pytest.skip("the seeds are not beside this checkout")
    found = row_problems(_row(**change))
    assert any(problem in p for p in found), found


def test_a_mention_must_be_in_the_named_test_not_elsewhere_in_its_file() -> None:
    # 'cfo' is in test_000_financial_dispute_authority, not in test_000_escalation_levels
    assert row_problems(_row(mentions=("cfo",)))
    disputes = ("tests/test_seed_tables.py::test_000_financial_dispute_authority",)
    assert row_problems(_row(proof=disputes, mentions=("cfo", "finance_manager"))) == []
    assert row_problems(_row(mentions=("L4",))) == []  # from the parametrize decorator
    # a module-level table the test uses counts as the test's own words
    issues = ("tests/test_seed_tables.py::test_002_issue_categories_and_routing",)
    assert row_problems(_row(proof=issues, mentions=("dmca_copyright",))) == []


def test_a_malformed_row_is_an_error() -> None:
    with pytest.raises(AssertionError, match="8 cells"):
        parse("| 000-1 | 000:30 | rule | — | — |\n")
