"""The policy's authority matrix applied to a principal. Pure.

A principal wears several hats: each team they belong to (as its lead or not), each
policy role they hold, and each of their teams' levels. An action is allowed if one hat
allows it; otherwise the refusal names the matrix cell (or amount band) that refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from escalade.auth.scopes import Principal
from escalade.policy import Policy
from escalade.policy.authority import UnknownAction, Verdict, may

__all__ = ["AuthorityDecision", "UnknownAction", "decide"]


@dataclass(frozen=True)
class AuthorityDecision:
    allowed: bool
    action: str
    rule: str  # e.g. "authority.ban_user" or "authority.issue_refund.bands[1]"
    reason: str
    acting_as: str | None  # the hat that allowed it


def _rule(policy: Policy, action_id: str, amount: float | None) -> tuple[str, str]:
    for a in policy.authority.actions:
        if a.id == action_id or (a.name or "").lower() == action_id.lower():
            if a.bands and amount is not None:
                for i, band in enumerate(a.bands):
                    if band.holds(amount):
                        return a.id, f"authority.{a.id}.bands[{i}]"
            return a.id, f"authority.{a.id}"
    raise UnknownAction(action_id)


def decide(
    policy: Policy,
    who: Principal,
    action: str,
    *,
    amount: float | None = None,
    acting_as: str | None = None,
) -> AuthorityDecision:
    """May ``who`` take ``action`` (for ``amount``)? ``acting_as`` picks one of their
    teams or roles; by default every hat they wear is tried. Raises ``UnknownAction``."""
    may(policy, action, "-", amount=amount)  # raises UnknownAction with the known actions
    action_id, rule = _rule(policy, action, amount)
    hats: list[tuple[str, bool]] = [(t, t in who.lead_of) for t in sorted(who.teams)]
    hats += [(r, False) for r in sorted(who.roles)] + [(lv, False) for lv in sorted(who.levels)]
    if acting_as is not None:
        hats = [h for h in hats if h[0] == acting_as]
        if not hats:
            return AuthorityDecision(
                False, action_id, rule, f"{who.actor} does not belong to '{acting_as}'", None
            )
    refusals: list[Verdict] = []
    for hat, lead in hats:
        verdict = may(policy, action, hat, lead=lead, amount=amount)
        if verdict.allowed:
            return AuthorityDecision(True, action_id, rule, verdict.reason, hat)
        refusals.append(verdict)
    if not refusals:
        reason = f"{who.actor} belongs to no team or role of the authority matrix"
        return AuthorityDecision(False, action_id, rule, reason, None)
    # the most telling refusal: one that a lead of the same team would have passed
    best = next((v for v in refusals if "lead" in v.reason), refusals[0])
    return AuthorityDecision(False, action_id, rule, best.reason, None)
