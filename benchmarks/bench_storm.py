"""An alert storm (issue 20): the same ``wrk`` script and settings against Escalade and
Prometheus Alertmanager 0.25 in one run, and ``POST /v1/escalations`` against a FastAPI +
one SQLite insert ceiling beside it.

Targets, each for ``--duration`` seconds with ``--threads``/``--connections``:

- Alertmanager (``prometheus-alertmanager``, its own port, a temp config and storage dir):
  ``POST /api/v2/alerts`` with 1 and 100 alerts per request, 10 keys and unique keys.
- Escalade (a real ``escalade serve``, engine in-process, as ``make run``) on SQLite and
  PostgreSQL: ``POST /v1/alerts`` (one alert per request), 10 keys and unique keys; and
  ``POST /api/v2/alerts`` at 1 and 100 per request when the server has that endpoint.
  After each ``/v1/alerts`` run the database is counted: every accepted alert must be an
  escalation (unique keys) or one of its ``alert.repeated`` entries (10 keys).
- ``POST /v1/escalations`` (unique tickets) on Escalade/SQLite and on ``ceiling_app``.

Each row: alerts/s, p50/p99 latency (wrk), non-2xx, server CPU ms per request (the serving
process's own CPU time from /proc; PostgreSQL's backends are not counted) and the ratio to
its peer. ``stages``: where a create and a repeat alert spend their time in process
(cProfile over the service, SQLite), so the next bottleneck is visible.

    .venv/bin/python -m benchmarks.bench_storm                  # everything, 10 s each
    .venv/bin/python -m benchmarks.bench_storm --duration 5 --stores sqlite
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from benchmarks.bench_intake import DEFAULT_PG, POLICY, _free_port, database
from escalade.bootstrap import bootstrap
from escalade.clock import SystemClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.routing.router import Router
from escalade.service.alerts import AlertIn
from escalade.settings import Settings
from escalade.store import tables as t
from escalade.store.db import SqlStore

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "storm.lua"
SERVE = [sys.executable, "-m", "escalade.cli.main", "serve"]
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AM_CONFIG = """\
route: {receiver: "null", group_wait: 30s, group_interval: 5m, repeat_interval: 4h}
receivers: [{name: "null"}]
"""
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its waited-for children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def _wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


@contextmanager
def process(cmd: list[str], ready: str, what: str, env: dict[str, str]) -> Iterator[int]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(ready, proc, what)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def alertmanager() -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(AM_CONFIG)
        port = _free_port()
        cmd = [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        base = f"http://127.0.0.1:{port}"
        with process(cmd, f"{base}/-/ready", "alertmanager", dict(os.environ)) as pid:
            yield base, pid


@contextmanager
def escalade(
    url: str, policy: Path, workers: int, python: str = sys.executable
) -> Iterator[tuple[str, int, str]]:
    """A migrated database with an intake+write key, and ``escalade serve`` on it, all
    through the command line of ``python``'s Escalade (``--baseline``: another checkout)."""
    cli = [python, "-m", "escalade.cli.main"]
    # a storm comes from one Alertmanager: the per-key and per-address intake limits
    # (600 and 1,200 a minute by default) would answer most of it 429
    env = {**os.environ, "ESCALADE_DATABASE_URL": url, "ESCALADE_RATE_INTAKE_KEY": "1000000/min",
           "ESCALADE_RATE_INTAKE_ADDRESS": "1000000/min"}  # fmt: skip
    env.setdefault("ESCALADE_SECRET_KEY", "storm-bench-link-key-0123456789abcdef")
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    secret = subprocess.run(
        [*cli, "keys", "create", "--name", f"storm-{uuid.uuid4().hex[:6]}", "--scope",
         "intake,write,read"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    port = _free_port()
    cmd = [*cli, "serve", "--policy", str(policy), "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    base = f"http://127.0.0.1:{port}"
    with process(cmd, f"{base}/healthz", "escalade serve", env) as pid:
        yield base, pid, f"Bearer {secret}"


@contextmanager
def ceiling() -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        cmd = [sys.executable, "-m", "uvicorn", "benchmarks.ceiling_app:app", "--port",
               str(port), "--log-level", "warning", "--loop", "auto", "--http", "auto"]  # fmt: skip
        env = {**os.environ, "CEILING_DB": str(Path(tmp) / "ceiling.db")}
        base = f"http://127.0.0.1:{port}"
        with process(cmd, f"{base}/docs", "ceiling app", env) as pid:
            yield base, pid


def wrk(
    base: str,
    path: str,
    *,
    fmt: str,
    batch: int,
    keys: str,
    auth: str,
    pid: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "STORM_FORMAT": fmt, "STORM_BATCH": str(batch), "STORM_KEYS": keys,
           "STORM_AUTH": auth, "STORM_TAG": tag}  # fmt: skip
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
           "--timeout", "30s", "--latency", "-s", str(SCRIPT), base + path]  # fmt: skip
    cpu0 = cpu_seconds(pid)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    cpu = cpu_seconds(pid) - cpu0
    line = next(x for x in done.stdout.splitlines() if x.startswith("STORM "))
    requests, errors, failed, p50, p99, duration_us = (int(x) for x in line.split()[1:])
    seconds = duration_us / 1e6
    ok = requests - errors
    return {
        "path": path,
        "per_request": batch,
        "keys": keys,
        "tag": tag,
        "requests": requests,
        "non_2xx": errors,
        "socket_errors_or_timeouts": failed,
        "alerts_per_second": round(ok * batch / seconds, 1),
        "requests_per_second": round(requests / seconds, 1),
        "p50_ms": round(p50 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "server_cpu_ms_per_request": round(1000 * cpu / max(requests, 1), 2),
        "accepted_alerts": ok * batch,
    }


def durable(url: str, run: dict[str, Any]) -> dict[str, Any]:
    """Count what the database holds of a ``/v1/alerts`` run's tag."""
    store = SqlStore(url)
    like = f"%{run['tag']}%"
    with store.engine.connect() as conn:
        opened = conn.execute(
            select(func.count()).select_from(t.alert_keys).where(t.alert_keys.c.key.like(like))
        ).scalar_one()
        repeated = conn.execute(
            select(func.count())
            .select_from(t.timeline)
            .join(t.alert_keys, t.alert_keys.c.escalation_id == t.timeline.c.escalation_id)
            .where(t.alert_keys.c.key.like(like), t.timeline.c.kind == "alert.repeated")
        ).scalar_one()
    store.dispose()
    stored = opened + repeated  # wrk counts only answers within its duration: stored >= accepted
    return {"escalations": opened, "repeats": repeated, "stored": stored,
            "lost": max(0, run["accepted_alerts"] - stored)}  # fmt: skip


def has_v2(base: str, auth: str) -> bool:
    status = httpx.post(
        f"{base}/api/v2/alerts", json=[], headers={"Authorization": auth}, timeout=10
    ).status_code
    return status not in (404, 405)


def stages(n: int) -> dict[str, Any]:
    """Where a create and a repeat alert spend their time in process (SQLite, cProfile)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{Path(tmp) / 'stages.db'}")
        store.upgrade()
        policy = policy_from_text(POLICY, "bench")
        runtime = bootstrap(
            Settings(), store=store, clock=SystemClock(), router=Router(policy), engine=False
        )
        service = runtime.service
        service.create(EscalationInput(subject="warm", customer={"email": "w@example.com"}))
        service.receive_alert(AlertIn(source="s", key="repeat", status="firing"))
        out = {}
        for what, call in (
            (
                "create",
                lambda i: service.create(
                    EscalationInput(subject=f"Cannot log in {i}", customer={"email": f"{i}@x.io"})
                ),
            ),
            ("repeat_alert", lambda i: service.receive_alert(AlertIn("s", "repeat", "firing"))),
        ):
            profile = cProfile.Profile()
            began = time.perf_counter()
            profile.enable()
            for i in range(n):
                call(i)
            profile.disable()
            wall = time.perf_counter() - began
            out[what] = {"ms_each_profiled": round(1000 * wall / n, 3), **_shares(profile)}
        store.dispose()
    return out


def _area(file: str, function: str) -> str:
    """Which part of the stack a profiled function belongs to."""
    if file == "~":
        if "sqlite3" in function:
            return "sqlite (C: statements, commit and fsync)"
        if "psycopg" in function:
            return "psycopg (C)"
        return "python builtins"
    if "/escalade/" in file:
        part = file.split("/escalade/", 1)[1].split("/")[0].removesuffix(".py")
        return f"escalade.{part}"
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    return "python stdlib"


def _shares(profile: cProfile.Profile) -> dict[str, Any]:
    """Own time per area, as a share of the whole (the top ten)."""
    raw: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    for (file, _line, function), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        area = _area(file, function)
        areas[area] = areas.get(area, 0.0) + tottime
    total = sum(areas.values()) or 1.0
    top = sorted(areas.items(), key=lambda kv: -kv[1])[:10]
    return {"share_percent": {area: round(100 * v / total, 1) for area, v in top}}


def run_escalade(
    store_kind: str, args: argparse.Namespace, python: str = sys.executable, name: str = "escalade"
) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, database(store_kind, args.pg) as url:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY)
        workers = args.workers if store_kind == "postgresql" else 1
        with escalade(url, policy, workers, python) as (base, pid, auth):
            for keys in ("10", "unique"):
                row = wrk(base, "/v1/alerts", fmt="v1", batch=1, keys=keys, auth=auth, pid=pid,
                          args=args)  # fmt: skip
                row["durable"] = durable(url, row)
                rows.append({"target": f"{name}/{store_kind}", **row})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            if has_v2(base, auth):
                for batch in (1, 100):
                    for keys in ("10", "unique"):
                        row = wrk(base, "/api/v2/alerts", fmt="v2", batch=batch, keys=keys,
                                  auth=auth, pid=pid, args=args)  # fmt: skip
                        rows.append({"target": f"{name}/{store_kind}", **row})
                        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            if store_kind == "sqlite":
                row = wrk(base, "/v1/escalations", fmt="create", batch=1, keys="unique",
                          auth=auth, pid=pid, args=args)  # fmt: skip
                rows.append({"target": f"{name}/sqlite", **row})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1, help="serve --workers on PostgreSQL")
    parser.add_argument("--stage-n", type=int, default=300, help="creates profiled in process")
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also run the Escalade rows with this interpreter's Escalade (e.g. "
        "/work/main/.venv/bin/python: the code before), as 'before/…'",
    )
    parser.add_argument("--pg", default=os.environ.get("ESCALADE_TEST_PG_URL", DEFAULT_PG))
    args = parser.parse_args()
    for tool in ("wrk", ALERTMANAGER):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install wrk "
                             "prometheus-alertmanager)")  # fmt: skip
    rows: list[dict[str, Any]] = []
    with alertmanager() as (base, pid):
        for batch in (1, 100):
            for keys in ("10", "unique"):
                row = wrk(base, "/api/v2/alerts", fmt="v2", batch=batch, keys=keys, auth="",
                          pid=pid, args=args)  # fmt: skip
                rows.append({"target": "alertmanager", **row})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    with ceiling() as (base, pid):
        row = wrk(base, "/v1/escalations", fmt="create", batch=1, keys="unique", auth="",
                  pid=pid, args=args)  # fmt: skip
        rows.append({"target": "ceiling:fastapi+sqlite-insert", **row})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for store_kind in args.stores.split(","):
        rows.extend(run_escalade(store_kind, args))
        if args.baseline:
            rows.extend(run_escalade(store_kind, args, args.baseline, "before"))
    print(json.dumps({"settings": vars(args), "runs": rows, "ratios": ratios(rows),
                      "stages": stages(args.stage_n)}, indent=2))  # fmt: skip


def ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Escalade's alerts/s over its peer's at the same keys (and batch, for /api/v2)."""
    am = {(r["per_request"], r["keys"]): r for r in rows if r["target"] == "alertmanager"}
    out: dict[str, float] = {}
    for r in rows:
        if not r["target"].startswith(("escalade/", "before/")):
            continue
        if r["path"] == "/v1/escalations":
            peer = next(x for x in rows if x["target"].startswith("ceiling"))
        else:
            peer = am.get((r["per_request"], r["keys"]))
        if peer and peer["alerts_per_second"]:
            key = f"{r['target']} {r['path']} x{r['per_request']} keys={r['keys']}"
            out[key] = round(r["alerts_per_second"] / peer["alerts_per_second"], 3)
    return out


if __name__ == "__main__":
    main()
