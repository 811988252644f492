"""Seed 000's financial dispute approval by amount band, every band against every
authority: only the band's authority decides (L1 and L2 as levels, the finance roles as
roles); the refusal names the band."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalade.auth.authority import decide
from escalade.auth.scopes import Principal, Scope
from escalade.policy import load_policy

POLICY = Path(__file__).parents[2] / "examples" / "policies" / "platform-operations.yaml"

# | Dispute Value | Authority | (../shared/seeds/000, "Financial Dispute Escalation")
BANDS = [
    (50, "L1", 0),
    (99.99, "L1", 0),
    (100, "L2", 1),
    (499.99, "L2", 1),
    (500, "finance_manager", 2),
    (1999.99, "finance_manager", 2),
    (2000, "finance_director", 3),
    (10000, "finance_director", 3),
    (10000.01, "cfo", 4),
    (250000, "cfo", 4),
]
HATS = {
    "L1": Principal("user", "l1@x.co", frozenset({Scope.write}), levels=frozenset({"L1"})),
    "L2": Principal("user", "l2@x.co", frozenset({Scope.write}), levels=frozenset({"L2"})),
    **{
        role: Principal("user", f"{role}@x.co", frozenset({Scope.write}), roles=frozenset({role}))
        for role in ("finance_manager", "finance_director", "cfo")
    },
}


@pytest.mark.parametrize(("amount", "authority", "band"), BANDS)
@pytest.mark.parametrize("hat", list(HATS))
def test_only_the_bands_authority_decides(
    amount: float, authority: str, band: int, hat: str
) -> None:
    policy = load_policy(POLICY)
    verdict = decide(policy, HATS[hat], "financial_dispute", amount=amount)
    assert verdict.allowed is (hat == authority), verdict.reason
    assert verdict.rule == f"authority.financial_dispute.bands[{band}]"
    if not verdict.allowed:
        assert f"only {authority} may decide" in verdict.reason
