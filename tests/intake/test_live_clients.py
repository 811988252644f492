"""Real clients against a real ``escalade serve``: the official ``pagerduty`` client with
only its base URL changed; intake that answers within its budget while the receiver of
the pages is slow (the page goes out through the outbox, later, exactly once)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pagerduty
import pytest
from tests.channels.receivers import HttpReceiver
from tests.intake.conftest import Served
from tests.keys import bearer

INTAKE_BUDGET = 1.0  # seconds: an intake answer never waits for a page to be delivered


def test_the_official_pagerduty_client_triggers_acknowledges_and_resolves(
    served_tls: Served, receiver: HttpReceiver
) -> None:
    # the client insists on https: Escalade serves TLS (--ssl-certfile/--ssl-keyfile)
    served = served_tls
    client = pagerduty.EventsApiV2Client(
        served.intake_key, base_url=served.url, verify=served.verify
    )
    dedup = client.trigger("Payments API 5xx above 2%", "payments-prod", severity="critical")
    assert dedup  # Escalade made the key, as PagerDuty does
    again = client.trigger(
        "Payments API 5xx above 2%", "payments-prod", dedup_key=dedup, severity="critical"
    )
    assert again == dedup
    [esc] = served.escalations()
    assert (esc["state"], esc["priority"], esc["subject"]) == (
        "open",
        "P1",
        "Payments API 5xx above 2%",
    )
    served.wait_for("the first page", lambda: receiver.requests)
    assert client.acknowledge(dedup) == dedup
    assert served.client.get(f"/v1/escalations/{esc['ref']}").json()["state"] == "acknowledged"
    assert client.resolve(dedup) == dedup
    read = served.client.get(f"/v1/escalations/{esc['ref']}").json()
    assert read["state"] == "resolved"
    kinds = [e["type"] for e in read["timeline"]]
    assert kinds.count("escalation.acknowledged") == 1 and "alert.repeated" in kinds
    client.close()
    wrong = pagerduty.EventsApiV2Client("not-a-key", base_url=served.url, verify=served.verify)
    with pytest.raises(pagerduty.Error):  # a wrong routing key is refused, as by PagerDuty
        wrong.trigger("x", "y")
    wrong.close()
    assert len(served.escalations()) == 1


def test_intake_answers_within_its_budget_while_the_receiver_is_slow(
    served: Served, receiver: HttpReceiver
) -> None:
    receiver.delay = 4.0
    alert = [{"labels": {"alertname": "QueueStuck", "severity": "critical", "queue": "mail"}}]
    took = []
    for _ in range(3):  # the first opens the escalation, the next two are repeats
        started = time.monotonic()
        answer = httpx.post(
            f"{served.url}/api/v2/alerts", json=alert, headers=bearer(served.intake_key), timeout=30
        )
        took.append(time.monotonic() - started)
        assert answer.status_code == 200, answer.text
    assert max(took) < INTAKE_BUDGET, took
    assert len(served.escalations()) == 1
    served.wait_for("the slow page", lambda: receiver.requests, timeout=60)
    time.sleep(1.0)
    assert len(receiver.requests) == 1  # once, although the alert came three times
    assert receiver.requests[0].json()["recipient"] == "ana"


def test_serve_https_needs_both_files(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    for args, said in (
        (["--ssl-certfile", str(cert)], "error: HTTPS needs both --ssl-certfile and --ssl-keyfile"),
        (
            ["--ssl-certfile", str(cert), "--ssl-keyfile", str(tmp_path / "none.pem")],
            f"error: {tmp_path / 'none.pem'}: no such file",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "escalade.cli.main", "serve", "--port", "9", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 1 and done.stderr.strip() == said, done.stderr
