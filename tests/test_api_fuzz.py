"""Hypothesis over the whole API with hostile input: huge, deep, NUL, lone surrogates,
non-finite and out-of-range numbers, invalid UTF-8, oversized bodies, odd refs and query
parameters. On SQLite and on PostgreSQL, no request may get a 5xx, and every refusal is in
the one error shape. (``make soak`` searches ten times harder.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.api.limits import Limits
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.db import SqlStore
from soak import scaled

POLICY = """
id: fuzz
levels: [{id: L1, team: ops}, {id: L2, team: db}]
people: [{id: ana}]
teams:
  - {id: ops, level: L1, contacts: {chat: "#ops"}}
  - {id: db, level: L2, contacts: {email: db@example.com}}
priorities:
  - {id: P1, match: {phrases: [outage]}, response: 1h}
  - {id: P2, response: 4h}
categories: [{id: general, owner: ops, path: [db]}]
routing: {default_priority: P2, default_category: general}
alerts: {category: general, severity: {critical: P1}}
triggers:
  - id: bulk
    kind: threshold
    threshold: {activity: record.deleted, more_than: 2, window: 1d}
    then: {category: general, priority: P1}
"""
LIMITS = Limits()


class Raw(str):
    """A JSON token written as is: NaN, Infinity, 1e999, a 40-digit integer."""


NUMBERS = (
    st.sampled_from(
        [
            Raw("NaN"),
            Raw("Infinity"),
            Raw("-Infinity"),
            Raw("1e999"),
            Raw("-1e999"),
            Raw("1E400"),
            Raw("9" * 40),
            Raw("-" + "9" * 25),
            Raw(str(2**63)),
            Raw(str(2**63 - 1)),
            Raw("5e-324"),
            Raw("-0.0"),
            Raw("1" + "0" * 4400),
        ]
    )
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
)
NASTY_TEXT = (
    st.sampled_from(
        ["a\x00b", "\x00", "\ud800", "x\udfff", "é\u2028\u0085", "", " ", "'; DROP TABLE x;--"]
    )
    | st.text(max_size=30)
    | st.integers(0, 250_000).map(lambda n: "x" * n)
)


class Deep:
    """``depth`` nested maps or lists around ``leaf`` (written without recursion)."""

    def __init__(self, depth: int, leaf: Any, as_map: bool) -> None:
        self.depth, self.leaf, self.as_map = depth, leaf, as_map

    def json(self) -> str:
        open_, close = ('{"k":', "}") if self.as_map else ("[", "]")
        return open_ * self.depth + dumps(self.leaf) + close * self.depth


SCALARS = st.none() | st.booleans() | NUMBERS | NASTY_TEXT
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            NASTY_TEXT.filter(lambda s: len(s) < 300) | st.sampled_from(["k"]), inner, max_size=4
        )
    ),
    max_leaves=12,
) | st.builds(Deep, st.integers(1, 3000), SCALARS, st.booleans())


def dumps(value: Any) -> str:
    """JSON text that may hold what json.dumps refuses (Raw tokens, NaN) on purpose."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Deep):
        return value.json()
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, allow_nan=True)


FIELDS = {
    "/v1/route": ["subject", "description", "category", "priority", "channel", "source", "tags",
                  "customer", "impact", "amount", "fields", "ticket", "history",
                  "technical_context"],
    "/v1/escalations": ["ref", "by", "subject", "description", "priority", "customer", "impact",
                        "amount", "tags", "fields", "ticket"],
    "/v1/alerts": ["source", "key", "status", "severity", "summary", "description"],
    "/v1/activity": ["actor", "action", "count"],
    "/v1/escalations/{ref}/actions": ["action", "by", "reason", "to", "text"],
}  # fmt: skip
GOOD = {
    "subject": "outage of checkout",
    "key": "disk/db1",
    "actor": "u1",
    "action": "record.deleted",
    "by": "lena",
    "ref": "F-1",
    "customer": {"email": "a@b.c"},
}
REFS = st.sampled_from(["F-1", "ESC-1", "NOPE", "%00", "a%00b", "x" * 300, "é", "..", "%ff"]) | (
    st.text(min_size=1, max_size=20).map(lambda s: quote(s, safe=""))
)


QUERIES = [
    "",
    "?state=open",
    "?team=ops%00",
    "?limit=0",
    "?limit=100000",
    f"?offset={2**70}",
    f"?offset={2**63}",
    "?state=%ff&team=" + "t" * 5000,
]
RAW_BODIES = [
    b"\xff\xfe",
    b'{"subject": "\xc3"}',
    b"",
    b"{" * 100_000,
    b"[" * 1000 + b"]" * 1000,
    b'{"subject": "' + b"a" * 1_100_000 + b'"}',
]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes | None, dict[str, str]]:
    """(method, url, body, headers)."""
    kind = draw(st.sampled_from(["body", "body", "body", "whole", "bytes", "get"]))
    headers = {"content-type": draw(st.sampled_from(["application/json", "application/x+json"]))}
    if kind == "get":
        ref = draw(REFS)
        query = draw(st.sampled_from(QUERIES))
        return (
            "GET",
            draw(st.sampled_from([f"/v1/escalations/{ref}", f"/v1/escalations{query}"])),
            None,
            {},
        )
    path = draw(st.sampled_from(sorted(FIELDS)))
    url = path.replace("{ref}", draw(REFS))
    if kind == "bytes":
        body = draw(st.sampled_from(RAW_BODIES))
        return "POST", url, body, headers
    if kind == "whole":
        return "POST", url, dumps(draw(VALUES)).encode("utf-8", "surrogatepass"), headers
    body = {k: v for k, v in GOOD.items() if k in FIELDS[path]}
    for key in draw(st.lists(st.sampled_from(FIELDS[path]), max_size=3, unique=True)):
        body[key] = draw(VALUES)
    if path.endswith("/actions"):
        body.setdefault("action", draw(st.sampled_from(["acknowledge", "escalate", "comment"])))
    text = dumps(body)
    return "POST", url, text.encode("utf-8", "surrogatepass"), headers


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    store = SqlStore(db_url)
    store.upgrade()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    service = EscalationService(store, clock)
    policy = policy_from_text(POLICY, "fuzz.yaml")
    service.apply_policy(policy)
    app = create_app(Settings(), policy, None, clock, service=service, limits=LIMITS)
    with TestClient(app, headers=bearer(issue_key(store, "admin"))) as c:
        assert c.post("/v1/escalations", json={"ref": "F-1", "subject": "first"}).status_code == 201
        yield c
    store.dispose()


@settings(
    max_examples=scaled(150),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(request=requests())
def test_hostile_input_never_gets_a_5xx(
    client: TestClient, request: tuple[str, str, bytes | None, dict[str, str]]
) -> None:
    method, url, body, headers = request
    r = client.request(method, url, content=body, headers=headers)
    assert r.status_code < 500, (method, url, (body or b"")[:300], r.text[:500])
    if r.status_code >= 400:
        detail = r.json()["detail"]
        assert isinstance(detail, list) and detail
        for item in detail:
            assert set(item) == {"loc", "field", "msg", "type"}, item
            assert item["msg"]
