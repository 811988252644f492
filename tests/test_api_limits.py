"""Limits at the edge and the one error shape: every refusal is a 413 or 422 that names the
field, in ``{"detail": [{"loc", "field", "msg", "type"}]}``; nothing reaches the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.api.limits import Limits
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.db import SqlStore

POLICY = """
id: limits-test
teams: [{id: ops, contacts: {chat: "#ops"}}]
categories: [{id: general, owner: ops}]
priorities: [{id: P2, response: 4h}]
routing: {default_priority: P2, default_category: general}
alerts: {category: general}
"""
LIMITS = Limits(max_body_bytes=64 * 1024, max_depth=8, max_string_chars=5_000)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = SqlStore(f"sqlite:///{tmp_path / 'limits.db'}")
    store.upgrade()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    service = EscalationService(store, clock)
    policy = policy_from_text(POLICY, "limits-test.yaml")
    service.apply_policy(policy)
    app = create_app(Settings(), policy, None, clock, service=service, limits=LIMITS)
    with TestClient(app, headers=bearer(issue_key(store, "admin"))) as c:
        yield c
    store.dispose()


def _post_raw(client: TestClient, url: str, body: str | bytes) -> tuple[int, list[dict]]:
    r = client.post(url, content=body, headers={"content-type": "application/json"})
    body_json = r.json()
    assert set(body_json) == {"detail"}, body_json
    for item in body_json["detail"]:
        assert set(item) == {"loc", "field", "msg", "type"}, item
    return r.status_code, body_json["detail"]


def _stored(client: TestClient) -> int:
    return len(client.get("/v1/escalations").json())


def test_body_over_the_limit_is_413_by_content_length_and_by_stream(client: TestClient) -> None:
    big = '{"subject": "x", "description": "' + "a" * 70_000 + '"}'
    status, detail = _post_raw(client, "/v1/escalations", big)
    assert status == 413 and detail[0]["type"] == "body_too_large"
    assert "65536 bytes" in detail[0]["msg"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        yield b'{"subject": "x", "description": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"}'

    r = client.post("/v1/escalations", content=chunks())
    assert r.status_code == 413 and r.json()["detail"][0]["type"] == "body_too_large"
    assert _stored(client) == 0


@pytest.mark.parametrize(
    ("literal", "shown"),
    [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1e999", "1e999")],
)
def test_non_finite_numbers_are_422_naming_the_field(
    client: TestClient, literal: str, shown: str
) -> None:
    status, detail = _post_raw(
        client, "/v1/escalations", f'{{"subject": "x", "amount": {literal}}}'
    )
    assert status == 422
    assert detail == [
        {
            "loc": ["body", "amount"],
            "field": "amount",
            "msg": f"'{shown}' is not a finite number: send a finite number",
            "type": "non_finite",
        }
    ]
    assert _stored(client) == 0


def test_nul_and_lone_surrogates_are_422_naming_the_field(client: TestClient) -> None:
    status, detail = _post_raw(
        client,
        "/v1/escalations",
        '{"subject": "a\\u0000b", "customer": {"name": "\\ud800"}, "fields": {"k\\u0000": 1}}',
    )
    assert status == 422
    by_field = {d["field"]: d for d in detail}
    assert set(by_field) == {"subject", "customer.name", "fields.k?"}
    assert by_field["subject"]["type"] == "nul_character"
    assert "NUL character" in by_field["subject"]["msg"]
    assert by_field["customer.name"]["type"] == "invalid_unicode"
    assert by_field["fields.k?"]["type"] == "nul_character"
    status, detail = _post_raw(client, "/v1/alerts", '{"key": "disk\\u0000full"}')
    assert (status, detail[0]["field"]) == (422, "key")
    assert _stored(client) == 0


def test_deep_nesting_is_422_at_the_level_it_goes_too_deep(client: TestClient) -> None:
    nested = '{"a": ' * 10 + "1" + "}" * 10
    status, detail = _post_raw(client, "/v1/route", f'{{"subject": "x", "fields": {nested}}}')
    assert status == 422
    assert detail[0]["type"] == "too_deep"
    assert detail[0]["field"] == "fields.a.a.a.a.a.a.a"  # the 9th level
    status, detail = _post_raw(client, "/v1/route", "[" * 20_000 + "]" * 20_000)
    assert (status, detail[0]["type"]) == (422, "too_deep")


def test_long_strings_and_keys_and_huge_integers_are_422(client: TestClient) -> None:
    status, detail = _post_raw(
        client,
        "/v1/escalations",
        '{"subject": "x", "ticket": {"notes": "' + "n" * 5_001 + '"}, '
        '"fields": {"' + "k" * 201 + '": 1}, "impact": {"users_affected": ' + "9" * 30 + "}}",
    )
    assert status == 422
    types = {d["field"]: d["type"] for d in detail}
    assert types["ticket.notes"] == "string_too_long"
    assert types["fields." + "k" * 40] == "key_too_long"
    assert types["impact.users_affected"] == "number_out_of_range"
    # the models' own field limits
    r = client.post("/v1/escalations", json={"subject": "s" * 2001})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "subject"
    r = client.post("/v1/escalations", json={"subject": "x", "tags": ["t"] * 101})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "tags"


def test_invalid_json_and_non_utf8_are_422(client: TestClient) -> None:
    status, detail = _post_raw(client, "/v1/escalations", '{"subject": ')
    assert (status, detail[0]["type"]) == (422, "json_invalid")
    assert "line 1" in detail[0]["msg"]
    status, detail = _post_raw(client, "/v1/escalations", b'{"subject": "\xff"}')
    assert (status, detail[0]["type"]) == (422, "json_invalid")
    assert "not UTF-8" in detail[0]["msg"]


def test_refs_follow_the_documented_pattern(client: TestClient) -> None:
    for bad in ["", "-x", "a b", "a/b", "x" * 65, "é1"]:
        r = client.post("/v1/escalations", json={"ref": bad, "subject": "x"})
        assert r.status_code == 422, bad
        assert r.json()["detail"][0]["field"] == "ref"
    r = client.post("/v1/escalations", json={"ref": "bad ref", "subject": "x"})
    assert "1 to 64 letters, digits" in r.json()["detail"][0]["msg"]
    for good in ["T-1", "ZD.4711", "jira:OPS_12", "x" * 64]:
        r = client.post("/v1/escalations", json={"ref": good, "subject": "x"})
        assert r.status_code == 201, (good, r.text)


def test_nul_in_path_or_query_is_422(client: TestClient) -> None:
    r = client.get("/v1/escalations/ESC%00-1")
    assert r.status_code == 422
    assert r.json()["detail"][0] | {"msg": ""} == {
        "loc": ["path"],
        "field": "",
        "msg": "",
        "type": "nul_character",
    }
    r = client.get("/v1/escalations?team=ops%00")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "team"


def test_every_error_status_uses_the_one_shape(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.json() == {
        "detail": [{"loc": [], "field": "", "msg": "Not Found", "type": "not_found"}]
    }
    r = client.delete("/v1/escalations")
    assert r.status_code == 405 and r.json()["detail"][0]["type"] == "method_not_allowed"
    r = client.get("/v1/escalations/NOPE")
    assert r.json()["detail"] == [
        {"loc": ["path", "ref"], "field": "ref", "msg": "no escalation 'NOPE'", "type": "not_found"}
    ]
    # 422 bodies as they always were, plus nothing else
    r = client.post("/v1/route", json={"subject": 5})
    assert r.json()["detail"][0] == {
        "loc": ["body", "subject"],
        "field": "subject",
        "msg": "Input should be a valid string",
        "type": "string_type",
    }


def test_docs_work_offline_their_assets_come_from_the_app(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        urls += re.findall(r"""url: ?["']([^"']+)["']""", html.text)
        assets = [u for u in urls if u.endswith((".js", ".css", ".png"))]
        assert len(assets) >= (3 if page == "/docs" else 1), urls
        for url in assets:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            got = client.get(url)
            assert got.status_code == 200 and len(got.content) > 1000, url
        assert "cdn" not in html.text.lower() and "fonts.googleapis" not in html.text
    assert client.get("/openapi.json").json()["info"]["title"] == "Escalade"


def test_an_anonymous_caller_gets_401_before_any_limit(client: TestClient) -> None:
    """The limits run before routing; still, only a public operation tells an anonymous
    caller what is wrong with its input (docs/auth.md)."""
    anonymous = TestClient(client.app)
    for url, body in (
        ("/v1/escalations", '{"subject": "x\\u0000"}'),
        ("/v1/escalations", '{"subject": '),
        ("/v1/alerts", '{"key": "k", "n": NaN}'),
    ):
        r = anonymous.post(url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 401, (url, body, r.text)
        assert r.json()["detail"][0]["type"] == "unauthenticated"
    assert anonymous.get("/v1/escalations?team=ops%00").status_code == 401
    assert (
        anonymous.post("/v1/route", content=b"x" * (LIMITS.max_body_bytes + 1)).status_code == 401
    )
    # a public operation: the limits' own answer
    r = anonymous.post("/v1/session", content='{"email": "a\\u0000"}')
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "nul_character"
    assert anonymous.get("/healthz?x=%00").status_code == 422
