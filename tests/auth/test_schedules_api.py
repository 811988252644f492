"""Schedules and on-call overrides over HTTP (issue 19, items 5 and 8): who is on call now,
at a time and through a window; overrides stored, validated, and followed by the engine's
pages in every process; who may add or remove them is an editing right (admins, the
schedule's team leads, the roles ``editing.overrides`` names), every refusal is 403 naming
the rule and audited, every change audited with before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.auth.provision import create_user
from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.routing.router import Router
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store import Store
from escalade.store.db import SqlStore

POLICY = """
id: oncall-api
roles: [{id: scheduler}]
people:
  - {id: ana, contacts: {email: ana@example.com}}
  - {id: bo, contacts: {email: bo@example.com}}
  - {id: cy, contacts: {email: cy@example.com}}
  - {id: dee, roles: [scheduler], contacts: {email: dee@example.com}}
  - {id: flo, contacts: {email: flo@example.com}}
schedules:
  - id: primary
    name: Ops primary
    timezone: Europe/Berlin
    layers: [{kind: daily, start: "2026-03-02T09:00", people: [ana, bo]}]
levels: [{id: L1, team: ops}]
teams:
  - id: ops
    level: L1
    schedule: primary
    members: [{person: ana, role: lead}, {person: bo}, {person: cy}]
  - {id: billing, level: L1, members: [{person: flo, role: lead}]}
priorities: [{id: P1, response: 1h, notify: page}]
categories: [{id: outage, owner: ops}]
routing: {default_priority: P1, default_category: outage}
editing: {overrides: [scheduler]}
"""
# Monday 13:00 in Berlin: day 8 of the daily rotation (ana, bo, ana, …): bo's shift, which
# runs from 09:00 (08:00 UTC) today to 09:00 tomorrow
T0 = datetime(2026, 3, 9, 12, tzinfo=UTC)
PASSWORD = "a long enough password"


@dataclass
class Setup:
    app: Any
    store: Store
    service: EscalationService
    admin: dict[str, str]

    def client(self) -> TestClient:
        return TestClient(self.app, headers=self.admin)

    def signed_in(self, email: str) -> TestClient:
        """A browser session of a user (with its CSRF token on every request)."""
        client = TestClient(self.app)
        r = client.post("/v1/session", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return client


def _setup(url: str) -> Setup:
    store = SqlStore(url)
    store.upgrade()
    clock = VirtualClock(T0)
    policy = policy_from_text(POLICY, "oncall-api.yaml")
    runtime = bootstrap(Settings(), store=store, clock=clock, router=Router(policy), engine=False)
    app = create_app(Settings(), policy, None, clock, service=runtime.service)
    for email, role, teams, person in [
        ("ana@example.com", "responder", [], "ana"),  # leads ops (in the policy)
        ("bo@example.com", "responder", [], "bo"),
        ("dee@example.com", "responder", [], "dee"),  # holds the role editing names
        ("flo@example.com", "lead", ["billing"], "flo"),  # leads another team
    ]:
        create_user(
            store, email=email, role=role, teams=teams, password=PASSWORD, person=person,
            at=T0, actor="tests", actor_kind="cli",
        )  # fmt: skip
    admin = bearer(issue_key(store, "admin", name="admin"))
    return Setup(app, store, runtime.service, admin)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return _setup(f"sqlite:///{tmp_path / 'oncall.db'}")


def _override(person: str, start: datetime, end: datetime, **more: Any) -> dict[str, Any]:
    return {"person": person, "start": start.isoformat(), "end": end.isoformat(), **more}


def _pages(store: Store, ref: str) -> list[str]:
    with store.unit_of_work(readonly=True) as uow:
        esc = uow.escalations.get_by_ref(ref)
        assert esc is not None
        return [m.recipient for m in uow.outbox.find() if m.escalation_id == esc.id]


def test_schedules_and_who_is_on_call(setup: Setup) -> None:
    client = setup.client()
    [listed] = client.get("/v1/schedules").json()
    assert listed == {
        "id": "primary",
        "name": "Ops primary",
        "timezone": "Europe/Berlin",
        "teams": ["ops"],
        "at": "2026-03-09T12:00:00Z",
        "on_call": ["bo"],
    }
    tuesday = client.get("/v1/schedules/primary", params={"at": "2026-03-10T09:00:00+01:00"})
    body = tuesday.json()
    assert body["on_call"] == ["ana"] and body["at"] == "2026-03-10T08:00:00Z"
    assert body["layers"] == [
        {"kind": "daily", "start": "2026-03-02T09:00", "handoff": None, "every": None,
         "people": ["ana", "bo"]}
    ]  # fmt: skip
    just_before = client.get("/v1/schedules/primary", params={"at": "2026-03-10T07:59:59Z"})
    assert just_before.json()["on_call"] == ["bo"]

    naive = client.get("/v1/schedules/primary", params={"at": "2026-03-10T09:00:00"})
    assert naive.status_code == 422
    [item] = naive.json()["detail"]
    assert item["loc"] == ["query", "at"] and "time zone" in item["msg"]
    missing = client.get("/v1/schedules/nights")
    assert missing.status_code == 404 and "primary" in missing.json()["detail"][0]["msg"]
    anonymous = TestClient(setup.app)
    assert anonymous.get("/v1/schedules").status_code == 401


def test_shifts_through_a_window_with_an_override(setup: Setup) -> None:
    client = setup.client()
    window = {"from": "2026-03-09T00:00:00Z", "until": "2026-03-11T00:00:00Z"}
    shifts = client.get("/v1/schedules/primary/oncall", params=window).json()["shifts"]
    assert [(s["start"], s["end"], s["on_call"]) for s in shifts] == [
        ("2026-03-09T00:00:00Z", "2026-03-09T08:00:00Z", ["ana"]),
        ("2026-03-09T08:00:00Z", "2026-03-10T08:00:00Z", ["bo"]),
        ("2026-03-10T08:00:00Z", "2026-03-11T00:00:00Z", ["ana"]),
    ]
    made = client.post(
        "/v1/schedules/primary/overrides",
        json=_override("cy", T0, T0 + timedelta(hours=4), reason="bo at the dentist"),
    )
    assert made.status_code == 201, made.text
    shifts = client.get("/v1/schedules/primary/oncall", params=window).json()["shifts"]
    assert [(s["start"], s["on_call"]) for s in shifts] == [
        ("2026-03-09T00:00:00Z", ["ana"]),
        ("2026-03-09T08:00:00Z", ["bo"]),
        ("2026-03-09T12:00:00Z", ["cy"]),
        ("2026-03-09T16:00:00Z", ["bo"]),
        ("2026-03-10T08:00:00Z", ["ana"]),
    ]
    too_long = client.get(
        "/v1/schedules/primary/oncall",
        params={"from": "2026-01-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
    )
    assert too_long.status_code == 422 and "92 days" in too_long.json()["detail"][0]["msg"]
    backwards = client.get(
        "/v1/schedules/primary/oncall", params={"from": window["until"], "until": window["from"]}
    )
    assert backwards.status_code == 422


def test_a_page_goes_to_the_override_person_in_every_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'oncall.db'}"
    api = _setup(url)
    client = api.client()
    assert (
        client.post("/v1/escalations", json={"ref": "A", "subject": "db down"}).status_code == 201
    )
    assert _pages(api.store, "A") == ["bo"]

    made = client.post(
        "/v1/schedules/primary/overrides",
        json=_override("cy", T0 - timedelta(hours=1), T0 + timedelta(hours=4), replaces="bo"),
    )
    assert made.status_code == 201, made.text
    assert client.get("/v1/schedules/primary").json()["on_call"] == ["cy"]
    assert (
        client.post("/v1/escalations", json={"ref": "B", "subject": "db down"}).status_code == 201
    )
    assert _pages(api.store, "B") == ["cy"]

    # another process on the same database (a worker, a second API) pages by it too
    other = bootstrap(Settings(), store=SqlStore(url), clock=VirtualClock(T0), engine=False)
    other.service.apply_policy(policy_from_text(POLICY, "oncall-api.yaml"))
    other.service.create(EscalationInput(subject="db down again"), ref="C")
    assert _pages(api.store, "C") == ["cy"]

    # removed: pages go back to the rotation
    removed = client.delete(f"/v1/schedules/primary/overrides/{made.json()['id']}")
    assert removed.status_code == 200 and removed.json()["person"] == "cy"
    assert (
        client.post("/v1/escalations", json={"ref": "D", "subject": "db down"}).status_code == 201
    )
    assert _pages(api.store, "D") == ["bo"]


def test_overrides_are_validated(setup: Setup) -> None:
    client = setup.client()
    url = "/v1/schedules/primary/overrides"

    def refused(body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(url, json=body)
        assert r.status_code == 422, r.text
        [item] = r.json()["detail"]
        return item  # type: ignore[no-any-return]

    end_first = refused(_override("cy", T0, T0 - timedelta(hours=1)))
    assert end_first["field"] == "end" and "after start" in end_first["msg"]
    equal = refused(_override("cy", T0, T0))
    assert equal["field"] == "end"
    naive = refused({"person": "cy", "start": "2026-03-09T12:00:00", "end": "2026-03-09T14:00Z"})
    assert naive["field"] == "start" and "time zone" in naive["msg"]
    stranger = refused(_override("zed", T0, T0 + timedelta(hours=1)))
    assert stranger["field"] == "person" and "zed" in stranger["msg"]
    covering = refused(_override("cy", T0, T0 + timedelta(hours=1), replaces="nobody"))
    assert covering["field"] == "replaces"
    far = refused(_override("cy", T0, datetime(9999, 1, 1, tzinfo=UTC)))
    assert far["field"] == "end"
    assert client.get(url).json() == []
    assert (
        client.post(
            "/v1/schedules/nights/overrides", json=_override("cy", T0, T0 + timedelta(hours=1))
        ).status_code
        == 404
    )
    assert client.delete(f"{url}/999").status_code == 404


# who → may add (and remove) an override on ``primary`` (ops's schedule)
RIGHTS = [
    ("admin key", True),  # admins always
    ("ana@example.com", True),  # leads ops
    ("dee@example.com", True),  # editing.overrides: [scheduler]
    ("bo@example.com", False),  # a member of ops, not a lead
    ("flo@example.com", False),  # leads billing, not ops
    ("write key", False),  # a key that may raise escalations, not edit
]


@pytest.mark.parametrize(("who", "allowed"), RIGHTS)
def test_who_may_edit_overrides(setup: Setup, who: str, allowed: bool) -> None:
    if who == "admin key":
        client = setup.client()
    elif who == "write key":
        client = TestClient(setup.app, headers=bearer(issue_key(setup.store, "read", "write")))
    else:
        client = setup.signed_in(who)
    admin = setup.client()
    existing = admin.post(
        "/v1/schedules/primary/overrides", json=_override("cy", T0, T0 + timedelta(hours=2))
    ).json()

    made = client.post(
        "/v1/schedules/primary/overrides",
        json=_override("dee", T0 + timedelta(days=1), T0 + timedelta(days=1, hours=8)),
    )
    removed = client.delete(f"/v1/schedules/primary/overrides/{existing['id']}")
    with setup.store.unit_of_work(readonly=True) as uow:
        entries = [
            e for e in uow.audit.entries() if "override" in e.target or "override" in e.action
        ]
    if allowed:
        assert (made.status_code, removed.status_code) == (201, 200), (made.text, removed.text)
        created, deleted = entries[-2:]
        assert (created.action, created.before, created.after["person"]) == (
            "override.create", None, "dee",
        )  # fmt: skip
        assert (deleted.action, deleted.before["id"], deleted.after) == (
            "override.delete", existing["id"], None,
        )  # fmt: skip
        assert created.actor == deleted.actor != "admin" or who == "admin key"
        return
    for r in (made, removed):
        assert r.status_code == 403, r.text
        [item] = r.json()["detail"]
        assert item["right"] == "edit_overrides"
        assert item["msg"] == "only admins, the leads of ops, scheduler may edit overrides"
    refusals = [e for e in entries if e.outcome == "refused"]
    assert [e.action for e in refusals] == [
        "POST /v1/schedules/primary/overrides",
        f"DELETE /v1/schedules/primary/overrides/{existing['id']}",
    ]
    assert admin.get("/v1/schedules/primary/overrides").json() == [existing]  # unchanged


def test_by_default_only_admins_and_the_team_leads(tmp_path: Path) -> None:
    """Without an ``editing`` section, the scheduler role grants nothing."""
    url = f"sqlite:///{tmp_path / 'default.db'}"
    setup = _setup(url)
    plain = POLICY.replace("editing: {overrides: [scheduler]}\n", "")
    setup.client().post("/v1/policies", json={"content": plain})
    dee = setup.signed_in("dee@example.com")
    r = dee.post(
        "/v1/schedules/primary/overrides", json=_override("dee", T0, T0 + timedelta(hours=1))
    )
    assert r.status_code == 403
    assert r.json()["detail"][0]["msg"] == "only admins, the leads of ops may edit overrides"
    ana = setup.signed_in("ana@example.com")
    r = ana.post(
        "/v1/schedules/primary/overrides", json=_override("dee", T0, T0 + timedelta(hours=1))
    )
    assert r.status_code == 201
