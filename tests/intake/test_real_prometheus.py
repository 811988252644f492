"""A real Prometheus and a real Alertmanager (Debian's ``prometheus`` and
``prometheus-alertmanager``), configured here (temporary folders, free ports, a rule that
fires at once and is evaluated every second), open escalations in a real ``escalade
serve`` and then resolve them when the rule is changed so it no longer fires.

- Prometheus → Escalade directly (``POST /api/v2/alerts``, the intake key as
  ``alerting.alertmanagers[].authorization.credentials``);
- Prometheus → Alertmanager → Escalade (``webhook_configs`` to
  ``/v1/integrations/alertmanager``, ``http_config.authorization.credentials``).

Skipped only when a binary is missing, loudly (``make test`` installs the packages where
it can). The packages' own daemons on 9090/9093, if running, are not used."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.channels.receivers import HttpReceiver, free_port
from tests.intake.conftest import Served, serve

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

RULES = """
groups:
  - name: escalade-test
    interval: 1s
    rules:
      - alert: CheckoutErrors
        expr: vector(1) %s 0
        labels: {severity: critical, service: checkout}
        annotations: {summary: "Checkout errors above threshold"}
"""


def _binary(path: str, package: str) -> str:
    found = path if Path(path).is_file() else shutil.which(Path(path).name)
    if found is None:
        msg = (
            f"{path} is missing (Debian package '{package}'): the real {package} intake "
            "test is NOT RUN; install it with 'apt-get install -y prometheus "
            "prometheus-alertmanager' (make test does so when it can)"
        )
        sys.stderr.write(f"\nWARNING: {msg}\n")
        pytest.skip(msg)
    return found


def _start(cmd: list[str], log: Path, ready: str) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"{cmd[0]} exited: {log.read_text()[-3000:]}"
        try:
            if httpx.get(ready, timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{cmd[0]} did not start: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


class Prometheus:
    def __init__(self, folder: Path, target: str, credentials: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.rules = folder / "rules.yml"
        self.rules.write_text(RULES % ">")
        config = folder / "prometheus.yml"
        config.write_text(
            f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{self.rules}]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs: [{{targets: ["{target}"]}}]
      authorization: {{credentials: "{credentials}"}}
"""
        )
        self.proc = _start(
            [_binary(PROMETHEUS, "prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
             "--rules.alert.resend-delay=1s", "--log.level=warn"],
            folder / "prometheus.log",
            f"http://127.0.0.1:{self.port}/-/ready",
        )  # fmt: skip

    def stop_firing(self) -> None:
        """The rule changed so that it no longer fires; Prometheus reloads it."""
        self.rules.write_text(RULES % "<")
        answer = httpx.post(f"http://127.0.0.1:{self.port}/-/reload", timeout=10)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def served(tmp_path: Path, receiver: HttpReceiver) -> Iterator[Served]:
    _binary(PROMETHEUS, "prometheus")
    _binary(ALERTMANAGER, "prometheus-alertmanager")
    (tmp_path / "escalade").mkdir()
    yield from serve(tmp_path / "escalade", receiver)


def _one_alert_escalation(served: Served, state: str) -> dict:  # type: ignore[type-arg]
    def check() -> dict | None:  # type: ignore[type-arg]
        found = [e for e in served.escalations() if e["subject"].startswith("Checkout errors")]
        assert len(found) <= 1, found
        return found[0] if found and found[0]["state"] == state else None

    return served.wait_for(f"an escalation {state} by the real alert", check, timeout=90)


def test_prometheus_pushes_to_escalade_directly(tmp_path: Path, served: Served) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    target = served.url.removeprefix("http://")
    prom = Prometheus(folder, target, served.intake_key)
    try:
        opened = _one_alert_escalation(served, "open")
        assert opened["priority"] == "P1"
        prom.stop_firing()
        resolved = _one_alert_escalation(served, "resolved")
        assert resolved["ref"] == opened["ref"]
    finally:
        _stop(prom.proc)
    timeline = served.client.get(f"/v1/escalations/{opened['ref']}").json()["timeline"]
    assert any(e["type"] == "escalation.resolved" for e in timeline)


def test_prometheus_through_alertmanager_to_escalade(tmp_path: Path, served: Served) -> None:
    folder = tmp_path / "am"
    folder.mkdir()
    am_port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: escalade
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: escalade
    webhook_configs:
      - url: "{served.url}/v1/integrations/alertmanager"
        send_resolved: true
        http_config:
          authorization: {{credentials: "{served.intake_key}"}}
"""
    )
    am = _start(
        [_binary(ALERTMANAGER, "prometheus-alertmanager"), f"--config.file={config}",
         f"--storage.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{am_port}",
         "--cluster.listen-address=", "--log.level=warn"],
        folder / "alertmanager.log",
        f"http://127.0.0.1:{am_port}/-/ready",
    )  # fmt: skip
    prom_folder = tmp_path / "prom"
    prom_folder.mkdir()
    try:
        prom = Prometheus(prom_folder, f"127.0.0.1:{am_port}", "alertmanager-needs-none")
        try:
            opened = _one_alert_escalation(served, "open")
            assert opened["priority"] == "P1"
            # the key is Alertmanager's own fingerprint of the alert's labels
            am_alerts = httpx.get(f"http://127.0.0.1:{am_port}/api/v2/alerts", timeout=10).json()
            fingerprints = {a["fingerprint"] for a in am_alerts}
            read = served.client.get(f"/v1/escalations/{opened['ref']}").json()
            reasons = " ".join(str(e) for e in read["timeline"])
            assert any(fp in reasons for fp in fingerprints), (fingerprints, reasons[:500])
            prom.stop_firing()
            resolved = _one_alert_escalation(served, "resolved")
            assert resolved["ref"] == opened["ref"]
        finally:
            _stop(prom.proc)
    finally:
        _stop(am)
