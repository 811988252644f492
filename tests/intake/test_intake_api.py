"""The alert-source endpoints in process (a real SQLite store): PagerDuty Events v2
(`/v2/enqueue`), Alertmanager's webhook, Prometheus's push (`/api/v2/alerts`) and a
policy-mapped generic webhook — their answers, their keys and their refusals."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.policy import PolicyInvalid, load_policy, policy_from_text
from escalade.routing.router import Router
from escalade.service.intake import fingerprint
from escalade.settings import Settings
from escalade.store.db import SqlStore

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)

POLICY = """
id: intake-test
levels:
  - {id: L1, team: frontline}
teams:
  - {id: frontline, level: L1}
priorities:
  - {id: P1, aliases: [urgent], response: 1h}
  - {id: P2, aliases: [normal], response: 4h}
  - {id: P3, response: 1d}
roles: [{id: counsel}]
categories:
  - {id: outage, owner: frontline}
  - {id: billing, owner: frontline}
  - {id: legal, owner: frontline, confidential: true, visible_to: [counsel]}
routing: {default_priority: P2, default_category: outage}
alerts:
  category: outage
  severity: {critical: P1, warning: P2}
  default_priority: P3
  escalation_per: %s
  webhooks:
    zammad:
      subject: /ticket/title
      dedup_key: /ticket/number
      description: /article/body
      customer_email: ticket.customer.email
      priority: /ticket/priority/name
      priorities: {"3 high": P1, "2 normal": P2, "1 low": P3}
      category: ticket.group
      categories: {Billing: billing, Sales: billing, Legal: legal}
      resolve_when: {path: /ticket/state, values: [closed, merged]}
"""


def _client(
    tmp_path: Path, per: str = "fingerprint", path: Path | None = None
) -> tuple[TestClient, SqlStore, str]:
    store = SqlStore(f"sqlite:///{tmp_path / 'intake.db'}")
    store.upgrade()
    clock = VirtualClock(NOW)
    policy = load_policy(path) if path else policy_from_text(POLICY % per, "intake-test.yaml")
    runtime = bootstrap(Settings(), store=store, clock=clock, router=Router(policy), engine=False)
    app = create_app(Settings(), policy, None, clock, service=runtime.service)
    key = issue_key(store, "intake", name="monitoring")
    return TestClient(app), store, key


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TestClient, SqlStore, str]:
    return _client(tmp_path)


_READERS: dict[int, str] = {}


def _reader(store: SqlStore) -> dict[str, str]:
    if id(store) not in _READERS:
        _READERS[id(store)] = issue_key(store, "read", name=f"reader-{id(store)}")
    return bearer(_READERS[id(store)])


def _read(store: SqlStore, client: TestClient, ref: str) -> dict[str, Any]:
    answer = client.get(f"/v1/escalations/{ref}", headers=_reader(store))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _refs(store: SqlStore, client: TestClient) -> list[dict[str, Any]]:
    answer = client.get("/v1/escalations", headers=_reader(store))
    assert answer.status_code == 200, answer.text
    return sorted(answer.json(), key=lambda e: e["ref"])


# --------------------------------------------------------------------------- PagerDuty


def test_pagerduty_trigger_acknowledge_resolve_by_dedup_key(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, store, key = setup
    event = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "db1/disk",
        "payload": {"summary": "Disk 95% full on db1", "source": "db1", "severity": "critical"},
    }
    first = client.post("/v2/enqueue", json=event)
    assert first.status_code == 202
    assert first.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "db1/disk",
    }
    assert client.post("/v2/enqueue", json=event).status_code == 202  # a repeat
    [esc] = _refs(store, client)
    assert (esc["priority"], esc["subject"], esc["state"]) == ("P1", "Disk 95% full on db1", "open")
    ack = {"routing_key": key, "event_action": "acknowledge", "dedup_key": "db1/disk"}
    assert client.post("/v2/enqueue", json=ack).json()["dedup_key"] == "db1/disk"
    assert _read(store, client, esc["ref"])["state"] == "acknowledged"
    assert client.post("/v2/enqueue", json=ack).status_code == 202  # acknowledged again: fine
    done = {"routing_key": key, "event_action": "resolve", "dedup_key": "db1/disk"}
    assert client.post("/v2/enqueue", json=done).status_code == 202
    read = _read(store, client, esc["ref"])
    assert read["state"] == "resolved"
    kinds = [e["type"] for e in read["timeline"]]
    assert "alert.repeated" in kinds and "escalation.acknowledged" in kinds
    # after a resolve the same dedup_key opens a new escalation, as in PagerDuty
    assert client.post("/v2/enqueue", json=event).status_code == 202
    assert len(_refs(store, client)) == 2


def test_pagerduty_trigger_without_dedup_key_gets_one(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, store, key = setup
    event = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "Queue backlog", "source": "q1", "severity": "info"},
    }
    a = client.post("/v2/enqueue", json=event).json()["dedup_key"]
    b = client.post("/v2/enqueue", json=event).json()["dedup_key"]
    assert a and b and a != b
    assert len(_refs(store, client)) == 2


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"routing_key": None}, "'routing_key' is missing or blank"),
        ({"routing_key": "not-a-key"}, "Invalid routing key: unknown API key"),
        ({"event_action": "explode"}, "'event_action' Input should be 'trigger', 'acknowledge'"),
        ({"payload": None}, "'payload' is missing or blank"),
        ({"payload": {"summary": "x", "source": "y", "severity": "dire"}}, "'payload.severity'"),
        ({"payload": {"source": "y", "severity": "info"}}, "'payload.summary' Field required"),
        ({"event_action": "resolve", "dedup_key": None}, "'dedup_key' is required to resolve"),
        ({"colour": "red"}, "'colour' is not allowed"),
    ],
)
def test_pagerduty_invalid_events_answer_as_pagerduty(
    setup: tuple[TestClient, SqlStore, str], change: dict[str, Any], error: str
) -> None:
    client, store, key = setup
    event: dict[str, Any] = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "k",
        "payload": {"summary": "s", "source": "src", "severity": "error"},
    }
    event.update(change)
    event = {k: v for k, v in event.items() if v is not None}
    answer = client.post("/v2/enqueue", json=event)
    assert answer.status_code == 400
    body = answer.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(e.startswith(error) for e in body["errors"]), body["errors"]
    assert _refs(store, client) == []


def test_pagerduty_needs_an_intake_key(setup: tuple[TestClient, SqlStore, str]) -> None:
    client, store, _ = setup
    reader = issue_key(store, "read", name="only-reads")
    event = {
        "routing_key": reader,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "src", "severity": "error"},
    }
    answer = client.post("/v2/enqueue", json=event)
    assert answer.status_code == 400
    assert "needs the 'intake' scope" in answer.json()["errors"][0]


# --------------------------------------------------------------------------- Alertmanager


def _am(status: str, *alerts: dict[str, Any], group: str = '{}:{alertname="DiskFull"}') -> dict:
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "escalade",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
        "commonAnnotations": {"summary": "Disk full"},
        "externalURL": "http://am.example:9093",
        "alerts": list(alerts),
    }


def _alert(instance: str, status: str = "firing") -> dict[str, Any]:
    labels = {"alertname": "DiskFull", "severity": "critical", "instance": instance}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "Disk full"},  # the same text for every alert
        "startsAt": "2026-03-02T11:58:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom.example/graph",
        "fingerprint": fingerprint(labels),
    }


def test_alertmanager_one_escalation_per_fingerprint_never_by_summary(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, store, key = setup
    body = _am("firing", _alert("db1"), _alert("db2"))
    answer = client.post("/v1/integrations/alertmanager", json=body, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    made = answer.json()["escalations"]
    assert len({e["ref"] for e in made}) == 2  # same summary, two alerts: two escalations
    again = client.post("/v1/integrations/alertmanager", json=body, headers=bearer(key))
    assert [e["ref"] for e in again.json()["escalations"]] == [e["ref"] for e in made]
    partly = _am("firing", _alert("db1", "resolved"), _alert("db2"))
    client.post("/v1/integrations/alertmanager", json=partly, headers=bearer(key))
    states = {e["ref"]: e["state"] for e in _refs(store, client)}
    assert states == {made[0]["ref"]: "resolved", made[1]["ref"]: "open"}
    esc = _read(store, client, made[1]["ref"])
    assert esc["priority"] == "P1" and esc["category"] == "outage"


def test_alertmanager_one_escalation_per_group_when_the_policy_says(tmp_path: Path) -> None:
    client, store, key = _client(tmp_path, per="group")
    body = _am("firing", _alert("db1"), _alert("db2"))
    made = client.post("/v1/integrations/alertmanager", json=body, headers=bearer(key)).json()
    assert len({e["ref"] for e in made["escalations"]}) == 1
    other = _am("firing", _alert("db3"), group='{}:{alertname="Other"}')
    client.post("/v1/integrations/alertmanager", json=other, headers=bearer(key))
    assert len(_refs(store, client)) == 2
    # one alert of the group resolved: the group still fires
    partly = _am("firing", _alert("db1", "resolved"), _alert("db2"))
    client.post("/v1/integrations/alertmanager", json=partly, headers=bearer(key))
    ref = made["escalations"][0]["ref"]
    assert _read(store, client, ref)["state"] == "open"
    done = _am("resolved", _alert("db1", "resolved"), _alert("db2", "resolved"))
    client.post("/v1/integrations/alertmanager", json=done, headers=bearer(key))
    assert _read(store, client, ref)["state"] == "resolved"
    # a group key longer than a stored key: its SHA-256 stands for it, stably
    long = _am("firing", _alert("db9"), group="{}/" + "g" * 1900)
    first = client.post("/v1/integrations/alertmanager", json=long, headers=bearer(key))
    again = client.post("/v1/integrations/alertmanager", json=long, headers=bearer(key))
    assert first.status_code == 200, first.text
    assert first.json()["escalations"][0]["key"].startswith("sha256:")
    assert first.json()["escalations"][0]["ref"] == again.json()["escalations"][0]["ref"]


def test_alertmanager_refusals(setup: tuple[TestClient, SqlStore, str]) -> None:
    client, store, key = setup
    body = _am("firing", _alert("db1"))
    assert client.post("/v1/integrations/alertmanager", json=body).status_code == 401
    writer = issue_key(store, "write", name="writer")
    assert (
        client.post("/v1/integrations/alertmanager", json=body, headers=bearer(writer)).status_code
        == 403
    )
    bad = client.post(
        "/v1/integrations/alertmanager", json={**body, "version": "3"}, headers=bearer(key)
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "version"
    assert _refs(store, client) == []


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_push_fires_and_resolves_by_labels(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, store, key = setup
    labels = {"alertname": "HighLatency", "severity": "warning", "job": "api"}
    alert = {
        "labels": labels,
        "annotations": {"summary": "p99 over 2s", "description": "checkout is slow"},
        "startsAt": "2026-03-02T11:59:00Z",
        "endsAt": (NOW + timedelta(minutes=4)).isoformat(),
        "generatorURL": "http://prom:9090/graph?g0.expr=x",
    }
    answer = client.post("/api/v2/alerts", json=[alert], headers=bearer(key))
    assert answer.status_code == 200 and answer.content in (b"", b"null")
    client.post("/api/v2/alerts", json=[alert], headers=bearer(key))  # re-sent each interval
    [esc] = _refs(store, client)
    read = _read(store, client, esc["ref"])
    assert (read["priority"], read["subject"]) == ("P2", "p99 over 2s")
    ended = {**alert, "endsAt": (NOW - timedelta(seconds=1)).isoformat()}
    assert client.post("/api/v2/alerts", json=[ended], headers=bearer(key)).status_code == 200
    assert _read(store, client, esc["ref"])["state"] == "resolved"


def test_prometheus_basic_auth_with_the_key_as_password(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, store, key = setup
    basic = {"Authorization": "Basic " + base64.b64encode(f"prometheus:{key}".encode()).decode()}
    alert = {"labels": {"alertname": "Up"}}
    assert client.post("/api/v2/alerts", json=[alert], headers=basic).status_code == 200
    wrong = {"Authorization": "Basic " + base64.b64encode(b"prometheus:nope").decode()}
    assert client.post("/api/v2/alerts", json=[alert], headers=wrong).status_code == 401
    # basic credentials are for intake only
    reader = issue_key(store, "read", name="basic-reader")
    as_basic = {"Authorization": "Basic " + base64.b64encode(f"x:{reader}".encode()).decode()}
    assert client.get("/v1/escalations", headers=as_basic).status_code == 401
    assert len(_refs(store, client)) == 1


@pytest.mark.parametrize(
    ("body", "field", "msg"),
    [
        ({"labels": {}}, "0.labels", "at least 1 item"),
        ({"labels": {"bad-name": "x"}}, "0.labels", "invalid label name 'bad-name'"),
        ({"annotations": {"a": "b"}}, "0.labels", "Field required"),
        (
            {
                "labels": {"a": "b"},
                "startsAt": "2026-03-02T12:00:00Z",
                "endsAt": "2026-03-02T11:00:00Z",
            },
            "0.endsAt",
            "start time must be before end time",
        ),
    ],
)
def test_prometheus_bad_bodies_are_400_with_a_message(
    setup: tuple[TestClient, SqlStore, str], body: dict[str, Any], field: str, msg: str
) -> None:
    client, store, key = setup
    answer = client.post("/api/v2/alerts", json=[body], headers=bearer(key))
    assert answer.status_code == 400
    item = answer.json()["detail"][0]
    assert item["field"] == field and msg in item["msg"], item
    not_list = client.post("/api/v2/alerts", json={"labels": {}}, headers=bearer(key))
    assert not_list.status_code == 400
    assert not_list.json()["detail"][0]["msg"] == "the body must be a JSON list of alerts"
    broken = client.post("/api/v2/alerts", content=b"[{", headers=bearer(key))
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"][0]["msg"]
    assert _refs(store, client) == []


def test_fingerprint_is_alertmanagers() -> None:
    # values computed by Prometheus's model.LabelSet.Fingerprint (FNV-1a 64)
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"a": "b"}) != fingerprint({"a": "c"})
    assert fingerprint({"a": "b", "c": "d"}) == fingerprint({"c": "d", "a": "b"})


# --------------------------------------------------------------------------- generic webhook


def _ticket(number: str, state: str = "open", **over: Any) -> dict[str, Any]:
    ticket = {
        "number": number,
        "title": "Charged twice for the annual plan",
        "state": state,
        "group": "Billing",
        "priority": {"name": "3 high"},
        "customer": {"email": "ines@example.org"},
    }
    ticket.update(over)
    return {"ticket": ticket, "article": {"body": "The card shows two charges of 480 EUR."}}


def test_generic_webhook_maps_creates_repeats_and_resolves(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, store, key = setup
    url = "/v1/integrations/webhook/zammad"
    first = client.post(url, json=_ticket("31001"), headers=bearer(key))
    assert first.status_code == 200, first.text
    ref = first.json()["escalation"]["ref"]
    assert (
        client.post(url, json=_ticket("31001"), headers=bearer(key)).json()["escalation"]["ref"]
        == ref
    )  # idempotent by the ticket number
    esc = _read(store, client, ref)
    assert (esc["subject"], esc["category"], esc["priority"]) == (
        "Charged twice for the annual plan",
        "billing",
        "P1",
    )
    assert esc["customer"]["email"] == "ines@example.org"
    other = client.post(
        url, json=_ticket("31002", priority={"name": "normal"}), headers=bearer(key)
    )
    assert _read(store, client, other.json()["escalation"]["ref"])["priority"] == "P2"
    closed = client.post(url, json=_ticket("31001", state="closed"), headers=bearer(key))
    assert closed.json()["escalation"]["state"] == "resolved"


@pytest.mark.parametrize(
    ("body", "field", "msg"),
    [
        ({"ticket": {"number": "1"}}, "subject", "the body has nothing at /ticket/title"),
        ({"ticket": {"title": "x"}}, "dedup_key", "the body has nothing at /ticket/number"),
        (
            {"ticket": {"title": "x", "number": "1", "priority": {"name": "whenever"}}},
            "priority",
            "'whenever' at /ticket/priority/name is not a priority of the policy",
        ),
        (
            {"ticket": {"title": "x", "number": "1", "group": "Marketing"}},
            "category",
            "'Marketing' at ticket.group is not a category",
        ),
        ({"ticket": {"title": {"a": 1}, "number": "1"}}, "subject", "is an object or a list"),
    ],
)
def test_generic_webhook_unmappable_bodies_are_422_naming_the_field(
    setup: tuple[TestClient, SqlStore, str], body: dict[str, Any], field: str, msg: str
) -> None:
    client, store, key = setup
    answer = client.post("/v1/integrations/webhook/zammad", json=body, headers=bearer(key))
    assert answer.status_code == 422
    item = answer.json()["detail"][0]
    assert item["field"] == field and msg in item["msg"], item
    assert _refs(store, client) == []


def test_generic_webhook_of_unknown_name_is_404(setup: tuple[TestClient, SqlStore, str]) -> None:
    client, _, key = setup
    answer = client.post("/v1/integrations/webhook/zendesk", json={}, headers=bearer(key))
    assert answer.status_code == 404
    assert (
        "maps no webhook 'zendesk' (alerts.webhooks: zammad)" in answer.json()["detail"][0]["msg"]
    )


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        ("{subject: /t/title}", "dedup_key"),
        ("{subject: /t/~2, dedup_key: /t/id}", "'~' must be followed by 0 or 1"),
        ("{subject: t..title, dedup_key: /t/id}", "no empty parts"),
        ("{subject: /t, dedup_key: /t/id, priorities: {x: P1}}", "'priority' names no path"),
        ("{subject: /t, dedup_key: /t/id, priority: /p, priorities: {x: P9}}", "P9"),
        ("{subject: /t, dedup_key: /t/id, category: /c, categories: {x: nope}}", "nope"),
    ],
)
def test_bad_webhook_mappings_are_policy_errors(mapping: str, error: str) -> None:
    text = f"""
id: bad-mapping
teams: [{{id: t}}]
priorities: [{{id: P1}}]
categories: [{{id: c, owner: t}}]
alerts: {{webhooks: {{hook: {mapping}}}}}
"""
    with pytest.raises(PolicyInvalid) as raised:
        policy_from_text(text, "bad.yaml")
    assert error in str(raised.value)
    assert "alerts" in str(raised.value)


def test_the_helpdesk_example_policy_maps_zammad_tickets(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples/policies/helpdesk-workflows.yaml"
    client, store, key = _client(tmp_path, path=example)
    ticket = {
        "ticket": {
            "number": "88121",
            "title": "Our nightly export job keeps failing with a 500 from your API",
            "state": "new",
            "priority": {"name": "3 high"},
            "customer": {"email": "ops@customer.example"},
        },
        "article": {"body": "Since Monday every call to the export endpoint errors out."},
    }
    url = "/v1/integrations/webhook/zammad"
    made = client.post(url, json=ticket, headers=bearer(key))
    assert made.status_code == 200, made.text
    esc = _read(store, client, made.json()["escalation"]["ref"])
    assert esc["priority"] == "high" and esc["customer"]["email"] == "ops@customer.example"
    ticket["ticket"]["state"] = "closed"
    assert client.post(url, json=ticket, headers=bearer(key)).json()["escalation"]["state"] == (
        "resolved"
    )


def test_long_texts_are_cut_and_long_keys_are_bounded(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, store, key = setup
    huge = "x" * 99_000
    prom = [
        {"labels": {"alertname": "Big", "a": huge[:90_000]}, "annotations": {"description": huge}}
    ]
    assert client.post("/api/v2/alerts", json=prom, headers=bearer(key)).status_code == 200
    event = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "d" * 255,
        "payload": {
            "summary": "s" * 1024,
            "source": "src",
            "severity": "info",
            "custom_details": {"log": huge, "more": huge},
        },
    }
    assert client.post("/v2/enqueue", json=event).status_code == 202
    ticket = _ticket("n" * 300)
    long_key = client.post("/v1/integrations/webhook/zammad", json=ticket, headers=bearer(key))
    assert long_key.status_code == 422
    assert long_key.json()["detail"][0]["field"] == "dedup_key"
    assert len(_refs(store, client)) == 2


def test_an_intake_learns_only_the_ref_of_a_confidential_escalation(
    setup: tuple[TestClient, SqlStore, str],
) -> None:
    client, _, key = setup
    url = "/v1/integrations/webhook/zammad"
    answer = client.post(url, json=_ticket("31009", group="Legal"), headers=bearer(key))
    assert answer.status_code == 200, answer.text
    made = answer.json()["escalation"]
    assert made["confidential"] is True and made["state"] is None and made["ref"]
