"""``escalade serve --workers N`` (issue 20): N API processes on PostgreSQL, serving one
port and deciding races in the database (identical alerts sent at once through both
processes open one escalation); on SQLite it refuses with the reason."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from escalade.cli.main import app
from keys import bearer, cli_key

POLICY = Path(__file__).parents[1] / "examples" / "policies" / "platform-operations.yaml"


def test_several_workers_on_sqlite_are_refused_with_the_reason(tmp_path: Path) -> None:
    env = {"ESCALADE_DATABASE_URL": f"sqlite:///{tmp_path / 'one.db'}"}
    result = CliRunner().invoke(app, ["serve", "--workers", "2", "--policy", str(POLICY)], env=env)
    assert result.exit_code == 2
    assert "--workers 2 needs PostgreSQL" in result.output
    assert "SQLite has one writer" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The server processes uvicorn started (not multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    found = []
    for child in (int(x) for x in text.split()):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(child)
    return found


@pytest.fixture
def two_workers(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    if not db_url.startswith("postgresql"):
        pytest.skip("--workers N is for PostgreSQL (SQLite's refusal is tested above)")
    env = {**os.environ, "ESCALADE_DATABASE_URL": db_url}
    cli = [sys.executable, "-m", "escalade.cli.main"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    headers = bearer(cli_key(env, "workers", scope="intake"))
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*cli, "serve", "--workers", "2", "--policy", str(POLICY), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 or not _up(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "serve.log").read_text())
            time.sleep(0.2)
        yield base, headers, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_api_processes_share_one_port_and_one_truth(
    two_workers: tuple[str, dict[str, str], int],
) -> None:
    base, headers, pid = two_workers
    assert len(_children(pid)) == 2

    def alert(_i: int) -> httpx.Response:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            return client.post("/v1/alerts", json={"source": "am", "key": "db1/disk"})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(alert, range(32)))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers][:3]
    refs = {r.json()["escalation"]["ref"] for r in answers}
    assert len(refs) == 1, refs
