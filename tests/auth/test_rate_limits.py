"""Rate limits on intake and sign-in, per key and per address: 429 with Retry-After in
the one error shape; a flood writes one audit entry a minute, not one per request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key
from tests.test_api_escalations import POLICY

from escalade.api.app import create_app
from escalade.auth.config import AuthSettings
from escalade.auth.ratelimit import Limit, RateLimiter
from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.memory import MemoryStore

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _app(auth: AuthSettings) -> tuple[TestClient, MemoryStore, VirtualClock]:
    store = MemoryStore()
    clock = VirtualClock(T0)
    service = EscalationService(store, clock)
    service.apply_policy(policy_from_text(POLICY, "api-test.yaml"))
    app = create_app(Settings(), service.active.policy, None, clock, service=service, auth=auth)  # type: ignore[union-attr]
    return TestClient(app), store, clock


def test_a_bucket_refills_at_its_rate() -> None:
    limiter = RateLimiter(Limit.parse("60/min,burst=2"))
    assert limiter.check("k", T0) is None
    assert limiter.check("k", T0) is None
    assert limiter.check("k", T0) == pytest.approx(1.0)
    assert limiter.check("other", T0) is None
    assert limiter.check("k", T0 + timedelta(seconds=1)) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lots", "not a rate limit"),
        ("5/fortnight", "not a rate limit"),
        ("0/min", "not a rate"),
        ("5/min,burst=0", "burst=N"),
    ],
)
def test_bad_limits_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Limit.parse(text)


def test_intake_is_limited_per_key() -> None:
    client, store, clock = _app(AuthSettings(intake_per_key=Limit.parse("6/min,burst=3")))
    first, second = issue_key(store, "intake", name="a"), issue_key(store, "intake", name="b")
    alert = {"key": "disk", "severity": "critical"}
    for _ in range(3):
        assert client.post("/v1/alerts", json=alert, headers=bearer(first)).status_code == 200
    r = client.post("/v1/alerts", json=alert, headers=bearer(first))
    assert r.status_code == 429
    assert r.headers["retry-after"] == "10"
    assert r.json()["detail"][0]["type"] == "rate_limited"
    assert client.post("/v1/alerts", json=alert, headers=bearer(second)).status_code == 200
    for _ in range(5):
        client.post("/v1/alerts", json=alert, headers=bearer(first))
    with store.unit_of_work() as uow:
        floods = [e for e in uow.audit.entries() if "rate_limited" in (e.detail or "")]
    assert len(floods) == 1 and floods[0].actor == "key:a"
    clock.advance(timedelta(seconds=10))
    assert client.post("/v1/alerts", json=alert, headers=bearer(first)).status_code == 200


def test_intake_is_limited_per_address_before_any_key_is_checked() -> None:
    client, store, _ = _app(AuthSettings(intake_per_address=Limit.parse("2/min")))
    key = issue_key(store, "intake")
    body = {"actor": "u", "action": "x"}
    assert client.post("/v1/activity", json=body, headers=bearer(key)).status_code == 200
    assert client.post("/v1/activity", json=body).status_code == 401
    r = client.post("/v1/activity", json=body, headers=bearer(key))
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 30


def test_sign_in_is_limited_per_account_and_per_address() -> None:
    client, store, _ = _app(
        AuthSettings(
            signin_per_account=Limit.parse("3/min"), signin_per_address=Limit.parse("5/min")
        )
    )
    admin = bearer(issue_key(store, "admin"))
    client.post(
        "/v1/users",
        json={"email": "ana@example.com", "role": "viewer", "password": "a long enough password"},
        headers=admin,
    )
    wrong = {"email": "ana@example.com", "password": "guess guess guess"}
    assert [client.post("/v1/session", json=wrong).status_code for _ in range(4)] == [
        401,
        401,
        401,
        429,
    ]
    # the right password does not get through while the account is limited
    right = {"email": "ana@example.com", "password": "a long enough password"}
    assert client.post("/v1/session", json=right).status_code == 429
    other = {"email": "bob@example.com", "password": "whatever it is"}
    assert client.post("/v1/session", json=other).status_code == 429  # the address: 6th try
