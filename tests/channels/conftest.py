"""Fixtures for channel tests: loopback HTTP receivers and an SMTP server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from tests.channels.receivers import HttpReceiver, MailBox, free_port, self_signed_cert


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, MailBox]]:
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, box
    controller.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is missing: STARTTLS/SMTPS tests NOT RUN")
    return self_signed_cert(tmp_path_factory.mktemp("tls"))
