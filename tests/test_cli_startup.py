"""Commands start with only what they need: routing and policy checks do not load the
database layer, the engine or the web server."""

from __future__ import annotations

import subprocess
import sys

from escalade.cli import simulate as simulate_cli
from escalade.simulate import runner


def test_the_command_line_does_not_import_the_database_layer_or_the_server() -> None:
    code = (
        "import sys, escalade.cli.main; "
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'fastapi', 'uvicorn', "
        "'escalade.engine', 'escalade.store.db') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_simulate_offers_the_stores_the_runner_knows() -> None:
    assert simulate_cli.STORES == runner.STORES
