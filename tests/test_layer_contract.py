"""The layer contract bites: a pure-core module that imports the store, or the clock, or
a module that closes an import cycle, makes ``lint-imports`` (run by ``make test``) fail
and name the offending import. Run on a copy of the package with one such import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    shutil.copytree(REPO / "src" / "escalade", tmp_path / "src" / "escalade")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "escalade" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contract_holds_on_the_package_as_it_is(tmp_path: Path) -> None:
    done = _lint(tmp_path, "escalation/messages.py", "")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        ("escalation/messages.py", "import escalade.store.rows", "escalade.store.rows"),
        ("sla/clocks.py", "import escalade.clock", "escalade.clock"),
        ("policy/validate.py", "import escalade.triage.check", "escalade.triage.check"),
        ("escalation/snapshot.py", "import sqlalchemy", "sqlalchemy"),
        ("store/migrate.py", "import escalade.store.db", ".migrate -> .db"),
    ],
)
def test_a_forbidden_import_fails_and_is_named(
    tmp_path: Path, module: str, line: str, named: str
) -> None:
    done = _lint(tmp_path, module, line)
    assert done.returncode != 0
    assert named in done.stdout
