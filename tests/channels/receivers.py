"""Real receivers for channel tests: an HTTP server that records every request (and can
fail for a while), and an SMTP server (aiosmtpd) that keeps every mail."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class HttpReceiver:
    """``fail_first`` requests are answered ``fail_status``; then ``status``/``reply``."""

    status: int = 200
    reply: bytes = b"ok"
    fail_first: int = 0
    fail_status: int = 503
    fail_until: float = 0.0  # time.monotonic() before which every request fails
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)
    requests: list[Received] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.attempts += 1
                    failing = (
                        receiver.attempts <= receiver.fail_first
                        or time.monotonic() < receiver.fail_until
                    )
                    if not failing:
                        receiver.requests.append(
                            Received("POST", self.path, dict(self.headers.items()), body)
                        )
                status, reply = (
                    (receiver.fail_status, b'{"error": "try later"}')
                    if failing
                    else (receiver.status, receiver.reply)
                )
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailBox:
    """An aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.mails: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: int = 0  # answer the next N messages with 451

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 mailbox busy, try again"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    """A TCP port nobody listens on now (aiosmtpd's controller needs one named)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 'localhost' and 127.0.0.1, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
