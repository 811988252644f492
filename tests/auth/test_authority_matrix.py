"""Seed 002's authority matrix, every cell, through the API: each column's member and lead
sign in and try each action on an escalation. ✓ lets both, "Lead" only the team's lead,
"-" neither; refunds are tried at $50, $99.99, $100 and $150 (exactly $100 is the ">$100"
row, the stricter one, as the example policy says). A refusal is 403 naming the rule, and
lands on the escalation's timeline and in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.auth.audit import verify
from escalade.auth.authority import decide
from escalade.auth.config import AuthSettings
from escalade.auth.ratelimit import Limit
from escalade.auth.scopes import user_principal
from escalade.clock import VirtualClock
from escalade.policy import Policy, load_policy
from escalade.service import EscalationService
from escalade.settings import Settings
from escalade.store.memory import MemoryStore

POLICY = Path(__file__).parents[2] / "examples" / "policies" / "marketplace-matrix.yaml"
COLUMNS = ["tier1", "tier2", "trust_safety", "billing", "tier3", "tier4"]

# The seed's table, as written (../shared/seeds/002, "Authority Matrix").
MATRIX = """
| Action                   | Tier 1 | Tier 2 | T&S  | Billing | Tier 3 | Tier 4 |
| Password reset           | ✓      | ✓      | ✓    | ✓       | ✓      | ✓      |
| Add connects             | ✓      | ✓      | -    | ✓       | ✓      | ✓      |
| Disable 2FA              | -      | ✓      | -    | -       | ✓      | ✓      |
| Issue refund (<$100)     | -      | ✓      | -    | ✓       | -      | ✓      |
| Issue refund (>$100)     | -      | -      | -    | ✓       | -      | ✓      |
| Unlock account           | ✓      | ✓      | ✓    | -       | ✓      | ✓      |
| Suspend account          | -      | -      | ✓    | -       | -      | ✓      |
| Ban user                 | -      | -      | Lead | -       | -      | ✓      |
| Release escrow (dispute) | -      | -      | -    | Lead    | -      | ✓      |
| Modify database          | -      | -      | -    | -       | ✓      | ✓      |
| Deploy code              | -      | -      | -    | -       | ✓      | ✓      |
| Feature flags            | -      | -      | -    | -       | ✓      | ✓      |
"""
ACTIONS = {
    "Password reset": [("password_reset", None)],
    "Add connects": [("add_connects", None)],
    "Disable 2FA": [("disable_2fa", None)],
    "Issue refund (<$100)": [("issue_refund", 50.0), ("issue_refund", 99.99)],
    "Issue refund (>$100)": [("issue_refund", 100.0), ("issue_refund", 150.0)],
    "Unlock account": [("unlock_account", None)],
    "Suspend account": [("suspend_account", None)],
    "Ban user": [("ban_user", None)],
    "Release escrow (dispute)": [("release_escrow", None)],
    "Modify database": [("modify_database", None)],
    "Deploy code": [("deploy_code", None)],
    "Feature flags": [("feature_flags", None)],
}


def _cells() -> list[tuple[str, float | None, str, bool, bool]]:
    """(action, amount, column, as lead, allowed) for every cell."""
    out = []
    for line in MATRIX.strip().splitlines()[1:]:
        name, *marks = [c.strip() for c in line.strip("|").split("|")]
        for action, amount in ACTIONS[name]:
            for column, mark in zip(COLUMNS, marks, strict=True):
                for lead in (False, True):
                    allowed = mark == "✓" or (mark == "Lead" and lead)
                    out.append((action, amount, column, lead, allowed))
    return out


CELLS = _cells()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY)


def test_every_cell_is_listed() -> None:
    assert len(CELLS) == 14 * 6 * 2


@pytest.mark.parametrize(("action", "amount", "column", "lead", "allowed"), CELLS)
def test_decision_per_cell(
    policy: Policy, action: str, amount: float | None, column: str, lead: bool, allowed: bool
) -> None:
    who = user_principal(
        f"{column}@example.com", "lead" if lead else "responder", [column], policy=policy
    )
    verdict = decide(policy, who, action, amount=amount)
    assert verdict.allowed is allowed, verdict.reason


def test_every_cell_through_the_api(policy: Policy) -> None:
    store = MemoryStore()
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    service = EscalationService(store, clock)
    service.apply_policy(policy)
    # a dozen people sign in from one address: more than the default limit allows
    auth = AuthSettings(signin_per_address=Limit(1000, 1000))
    app = create_app(Settings(), policy, None, clock, service=service, auth=auth)
    admin = TestClient(app, headers=bearer(issue_key(store, "admin")))
    created = admin.post("/v1/escalations", json={"subject": "Refund please", "ref": "R-1"})
    assert created.status_code == 201
    sessions: dict[tuple[str, bool], tuple[TestClient, str]] = {}
    for column in COLUMNS:
        for lead in (False, True):
            email = f"{'lead' if lead else 'member'}.{column}@example.com"
            made = admin.post(
                "/v1/users",
                json={
                    "email": email,
                    "role": "lead" if lead else "responder",
                    "teams": [column],
                    "password": "a long enough password",
                },
            )
            assert made.status_code == 201, made.text
            client = TestClient(app)
            signed = client.post(
                "/v1/session", json={"email": email, "password": "a long enough password"}
            )
            assert signed.status_code == 200, signed.text
            sessions[column, lead] = client, signed.json()["csrf_token"]
    refused = 0
    for action, amount, column, lead, allowed in CELLS:
        client, csrf = sessions[column, lead]
        body = {"action": action, **({"amount": amount} if amount is not None else {})}
        r = client.post(
            "/v1/escalations/R-1/authority-actions", json=body, headers={"X-CSRF-Token": csrf}
        )
        if allowed:
            assert r.status_code == 200, (action, amount, column, lead, r.text)
            assert r.json()["acting_as"] == column
        else:
            refused += 1
            assert r.status_code == 403, (action, amount, column, lead, r.text)
            [item] = r.json()["detail"]
            assert item["type"] == "authority_refused"
            assert item["rule"].startswith(f"authority.{action}"), item
            assert item["msg"]
    timeline = admin.get("/v1/escalations/R-1").json()["timeline"]
    kinds = [e["type"] for e in timeline]
    assert kinds.count("authority.refused") == refused
    assert kinds.count("authority.allowed") == len(CELLS) - refused
    ban = next(
        e
        for e in timeline
        if e["type"] == "authority.refused"
        and e["action"] == "ban_user"
        and e["actor"] == "member.trust_safety@example.com"
    )
    assert ban["reason"] == "'Ban user': only the trust_safety lead may (lead-only cell)"
    with store.unit_of_work() as uow:
        entries = uow.audit.entries(limit=10_000)
    assert (
        sum(e.action.startswith("authority.") and e.outcome == "refused" for e in entries)
        == refused
    )
    assert verify(store)[1] == []


def test_refund_bands_name_the_band_that_refused(policy: Policy) -> None:
    who = user_principal("t2@example.com", "responder", ["tier2"], policy=policy)
    verdict = decide(policy, who, "issue_refund", amount=100)
    assert not verdict.allowed and verdict.rule == "authority.issue_refund.bands[1]"
    assert verdict.reason == "'Issue refund' from 100: only billing, tier4 may decide"
