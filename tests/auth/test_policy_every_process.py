"""A policy version applied over HTTP in one API process is active in every other process
on the same database without a restart: each looks at the active version in the store (a
one-row read, at most once per ``policy_check_every`` seconds) and swaps its policy and
router (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key
from tests.test_api_escalations import POLICY

from escalade.api.app import create_app
from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.routing.router import Router
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.db import SqlStore

NEW = POLICY.replace("{id: P2, response: 4h}", "{id: P2, response: 2h}").replace(
    "phrases: [outage]", "phrases: [outage, meltdown]"
)
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _process(url: str, clock: VirtualClock) -> tuple[TestClient, EscalationService]:
    """One API process: its own store connection, service and app, started with POLICY."""
    store = SqlStore(url)
    policy = policy_from_text(POLICY, "api-test.yaml")
    runtime = bootstrap(Settings(), store=store, clock=clock, router=Router(policy), engine=False)
    app = create_app(Settings(), policy, None, clock, service=runtime.service)
    return TestClient(app), runtime.service


def test_the_second_process_uses_a_version_applied_in_the_first(db_url: str) -> None:
    SqlStore(db_url).upgrade()
    clock = VirtualClock(T0)
    first, first_service = _process(db_url, clock)
    second, second_service = _process(db_url, clock)
    second_service.policy_check_every = 0.0  # look on every request (the default: 1 s)
    admin = bearer(issue_key(first_service.store, "admin", name="admin"))
    old_version = second_service.active.version_id  # type: ignore[union-attr]

    before = second.post("/v1/route", json={"subject": "total meltdown"}, headers=admin).json()
    assert before["priority"] == "P2"

    applied = first.post("/v1/policies", json={"content": NEW}, headers=admin)
    assert applied.status_code == 201, applied.text
    new_version = applied.json()["version"]
    assert new_version != old_version

    # the second process was never told: it finds out at its next request
    after = second.post("/v1/route", json={"subject": "total meltdown"}, headers=admin).json()
    assert after["priority"] == "P1"
    listed = second.get("/v1/policies", headers=admin).json()
    assert [v["version"] for v in listed if v["active"]] == [new_version]
    served = second.get("/v1/policy", headers=admin).json()
    assert served["priorities"][1]["response"] == {"target": "2h"}
    created = second.post(
        "/v1/escalations", json={"ref": "T-9", "subject": "a question"}, headers=admin
    ).json()
    assert created["policy_version"] == new_version
    assert second_service.active.version_id == new_version  # type: ignore[union-attr]


def test_the_check_is_throttled(db_url: str) -> None:
    """With the default, a process reads the active version at most once a second."""
    SqlStore(db_url).upgrade()
    clock = VirtualClock(T0)
    first, first_service = _process(db_url, clock)
    second, second_service = _process(db_url, clock)
    admin = bearer(issue_key(first_service.store, "admin", name="admin"))
    ticks = iter([1000.0, 1000.5, 1001.2])
    second_service.monotonic = lambda: next(ticks)
    second.get("/v1/policies", headers=admin)  # looks (t = 1000.0): nothing new
    assert first.post("/v1/policies", json={"content": NEW}, headers=admin).status_code == 201
    new_version = first_service.active.version_id  # type: ignore[union-attr]
    second.get("/v1/policies", headers=admin)  # t = 1000.5: too soon to look again
    assert second_service.active.version_id != new_version  # type: ignore[union-attr]
    second.get("/v1/policies", headers=admin)  # t = 1001.2: looks, takes it up
    assert second_service.active.version_id == new_version  # type: ignore[union-attr]


def test_a_restarted_process_keeps_the_version_it_was_started_with(db_url: str) -> None:
    """``serve`` with a policy file applies it: that version becomes the active one for
    everybody (the last one applied wins)."""
    SqlStore(db_url).upgrade()
    clock = VirtualClock(T0)
    first, first_service = _process(db_url, clock)
    admin = bearer(issue_key(first_service.store, "admin", name="admin"))
    assert first.post("/v1/policies", json={"content": NEW}, headers=admin).status_code == 201
    _, second_service = _process(db_url, clock)  # restarted with the POLICY file
    first_service.policy_check_every = 0.0
    first.get("/v1/policies", headers=admin)
    assert first_service.active.version_id == second_service.active.version_id  # type: ignore[union-attr]
