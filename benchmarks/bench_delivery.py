"""Delivery benchmark: intake to page arrival per channel, and the delivery log's cost.

1. **Intake → arrival** (``--per-channel N``): ``escalade serve``'s object graph in one
   process (uvicorn on loopback, the engine thread, SQLite in WAL mode), a policy whose
   ladder pages a person at 0 s on one channel, delivered by the real channel class to a
   local receiver (an HTTP server, or aiosmtpd for email). For each channel, N escalations
   are raised one at a time with ``POST /v1/escalations`` and the time from sending the
   request to the page arriving at the receiver is measured (p50, p99, max).
2. **Delivery log cost** (``--log-messages M``): M messages enqueued and delivered by the
   outbox step through a capturing channel, with the delivery log and with it switched
   off (its repository replaced by a no-op), on SQLite and PostgreSQL: µs per message for
   enqueue and for delivery, and the difference.

    .venv/bin/python -m benchmarks.bench_delivery
    .venv/bin/python -m benchmarks.bench_delivery --per-channel 50 --channels webhook,email

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller

from escalade.api.app import create_app
from escalade.channels.links import ActionLinks
from escalade.channels.router import policy_channels
from escalade.clock import SystemClock
from escalade.engine import CapturingChannel, EngineConfig
from escalade.engine.outbox import OutboxStep
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.service.wiring import escalation_engine
from escalade.settings import Settings
from escalade.store import NewDelivery, Store
from escalade.store.db import SqlStore

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHANNELS = ["webhook", "slack", "teams", "pagerduty", "opsgenie", "sms", "voice", "apprise",
            "email"]  # fmt: skip

POLICY = """
id: bench-delivery
people: [{id: ana, contacts: {email: ana@example.com, sms: "+15550001", phone: "+15550001"}}]
teams: [{id: ops}]
priorities: [{id: P1, ladder: page, notify: queue}]
ladders:
  - id: page
    steps: [{after: 0s, notify: [{person: ana}], channel: %(carries)s, unless: []}]
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
channels:
  - %(instance)s
"""


class Arrivals:
    """Arrival times (perf_counter) keyed by escalation ref."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.cond = threading.Condition()

    def arrived(self, ref: str) -> None:
        with self.cond:
            self.at.setdefault(ref, time.perf_counter())
            self.cond.notify_all()

    def wait(self, ref: str, timeout: float = 30.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: ref in self.at, timeout):
                raise TimeoutError(f"{ref} never arrived")
            return self.at[ref]


def _ref_in(body: bytes) -> str | None:
    text = body.decode(errors="replace")
    for token in text.replace('"', " ").replace("+", " ").replace("%3A", ":").split():
        if token.startswith("B-") and token[2:].rstrip(":.,}").isdigit():
            return token.rstrip(":.,}")
    return None


def http_receiver(arrivals: Arrivals, status: int, reply: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            ref = _ref_in(body)
            if ref:
                arrivals.arrived(ref)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class MailBox:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = str(message_from_bytes(envelope.content)["Subject"] or "")
        ref = _ref_in(subject.encode())
        if ref:
            self.arrivals.arrived(ref)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def instance(channel: str, url: str, smtp_port: int) -> tuple[str, str]:
    """The policy's channel instance for a channel kind, and the message channel."""
    if channel == "email":
        return (
            f"{{id: b, type: email, carries: [email], host: 127.0.0.1, port: {smtp_port},"
            " security: none, sender: escalade@example.com}",
            "email",
        )
    return {
        "webhook": (f'{{id: b, type: webhook, carries: [webhook], url: "{url}/h",'
                    " signing_secret: {env: B_SECRET}}", "webhook"),
        "slack": ("{id: b, type: slack, carries: [chat], webhook: {env: B_URL}}", "chat"),
        "teams": ("{id: b, type: teams, carries: [chat], webhook: {env: B_URL}}", "chat"),
        "pagerduty": (f'{{id: b, type: pagerduty, carries: [pagerduty], url: "{url}",'
                      " routing_key: {env: B_SECRET}}", "pagerduty"),
        "opsgenie": (f'{{id: b, type: opsgenie, carries: [opsgenie], url: "{url}",'
                     " api_key: {env: B_SECRET}}", "opsgenie"),
        "sms": (f'{{id: b, type: sms, carries: [sms], url: "{url}", account: AC1,'
                ' token: {env: B_SECRET}, sender: "+15559999"}', "sms"),
        "voice": (f'{{id: b, type: voice, carries: [phone], url: "{url}", account: AC1,'
                  ' token: {env: B_SECRET}, sender: "+15559999"}', "phone"),
        "apprise": ("{id: b, type: apprise, carries: [chat], target: {env: B_APPRISE}}", "chat"),
    }[channel]  # fmt: skip


@contextmanager
def serving(store: Store, policy_text: str, env: dict[str, str]) -> Iterator[str]:
    """uvicorn + engine thread, as ``escalade serve`` runs them; yields the base URL."""
    service = EscalationService(store, SystemClock())
    policy = policy_from_text(policy_text, "bench.yaml")
    service.apply_policy(policy)
    port = free_port()
    links = ActionLinks(b"bench-delivery-key-0123456789", f"http://127.0.0.1:{port}")
    channels = policy_channels(policy, fallback=CapturingChannel(), links=links, environ=env)
    engine = escalation_engine(service, channels, config=EngineConfig())
    app = create_app(Settings(), policy, None, service.clock, service=service, engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def intake_to_arrival(channel: str, n: int, workdir: Path) -> dict[str, Any]:
    arrivals = Arrivals()
    reply = {"slack": (200, b"ok"), "teams": (202, b""), "pagerduty": (202, b"{}"),
             "opsgenie": (202, b"{}"), "sms": (201, b"{}"), "voice": (201, b"{}")}  # fmt: skip
    status, body = reply.get(channel, (200, b"ok"))
    receiver = http_receiver(arrivals, status, body)
    host, port = receiver.server_address[:2]
    url = f"http://{host}:{port}"
    smtp = Controller(MailBox(arrivals), hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {"B_SECRET": "s3cret", "B_URL": f"{url}/hook", "B_APPRISE": f"json://{host}:{port}/a"}
    inst, carries = instance(channel, url, smtp.port)
    store = SqlStore(f"sqlite:///{workdir / f'{channel}.db'}")
    store.upgrade()
    latencies: list[float] = []
    try:
        with serving(store, POLICY % {"carries": carries, "instance": inst}, env) as base:
            client = httpx.Client(base_url=base, timeout=30)
            for i in range(n):
                ref = f"B-{i}"
                started = time.perf_counter()
                answer = client.post(
                    "/v1/escalations", json={"subject": f"{ref}: checkout down", "ref": ref}
                )
                answer.raise_for_status()
                latencies.append(arrivals.wait(ref) - started)
    finally:
        smtp.stop()
        receiver.shutdown()
        store.dispose()
    ms = [x * 1000 for x in latencies]
    return {
        "channel": channel,
        "n": n,
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(_pct(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


class _NoLog:
    """The delivery log switched off (for the comparison only)."""

    def record_many(self, events: Sequence[NewDelivery]) -> None:
        pass


def log_cost(url: str, m: int, with_log: bool) -> dict[str, float]:
    store = SqlStore(url)
    store.upgrade()
    now = datetime.now(UTC)
    original_uow = store.unit_of_work

    @contextmanager
    def uow_without_log(**kw: Any) -> Iterator[Any]:
        with original_uow(**kw) as uow:
            uow.deliveries = _NoLog()
            yield uow

    if not with_log:
        store.unit_of_work = uow_without_log  # type: ignore[method-assign]
    started = time.perf_counter()
    with store.unit_of_work() as uow:
        if with_log:
            for i in range(m):
                uow.outbox.enqueue(key=f"m{i}", channel="email", recipient="ana",
                                   audience="internal", template=None, payload={"ref": "X"},
                                   at=now)  # fmt: skip
        else:  # the same insert without the 'queued' row
            from escalade.store.repositories import _outbox_insert

            for i in range(m):
                uow.connection.execute(_outbox_insert(store.dialect), {
                    "idempotency_key": f"m{i}", "escalation_id": None, "channel": "email",
                    "recipient": "ana", "audience": "internal", "template": None,
                    "payload": {"ref": "X"}, "state": "pending", "created_at": now,
                    "available_at": now, "attempts": 0,
                })  # fmt: skip
        uow.commit()
    enqueued = time.perf_counter() - started
    step = OutboxStep(CapturingChannel(), worker="bench", config=EngineConfig(batch_size=256))
    started = time.perf_counter()
    while step.run(now, store):
        pass
    delivered = time.perf_counter() - started
    store.dispose()
    return {"enqueue_us": enqueued / m * 1e6, "deliver_us": delivered / m * 1e6}


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-channel", type=int, default=200)
    parser.add_argument("--channels", default=",".join(CHANNELS))
    parser.add_argument("--log-messages", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="log-cost runs (median)")
    parser.add_argument("--pg", default=os.environ.get("ESCALADE_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"load_average": os.getloadavg(), "intake_to_arrival": []}
    with tempfile.TemporaryDirectory() as tmp:
        for channel in [c for c in args.channels.split(",") if c]:
            row = intake_to_arrival(channel, args.per_channel, Path(tmp))
            result["intake_to_arrival"].append(row)
            print(json.dumps(row), flush=True)
        costs: dict[str, list[dict[str, float]]] = {}
        for run in range(args.repeats):
            for with_log in (True, False):  # alternated, so drift hits both alike
                name = "with" if with_log else "without"
                url = f"sqlite:///{Path(tmp) / f'log-{run}-{name}.db'}"
                costs.setdefault(f"sqlite_{name}_log", []).append(
                    log_cost(url, args.log_messages, with_log)
                )
                if not args.no_pg:
                    with pg_schema(args.pg) as pg_url:
                        costs.setdefault(f"postgresql_{name}_log", []).append(
                            log_cost(pg_url, args.log_messages, with_log)
                        )
        result["delivery_log_cost"] = {
            setup: {
                measure: round(statistics.median(r[measure] for r in runs), 1)
                for measure in runs[0]
            }
            | {"runs": len(runs)}
            for setup, runs in costs.items()
        }
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
