"""The authority matrix: may this principal take this action (for this amount)? Pure.

A principal is who acts: the team (or role, or level) they act for, and whether they are
that team's lead. A cell is ✓ (``allow``), "Lead" (``lead_only``: only that team's lead) or
absent (-). Amount bands (seed 000's financial disputes) say who decides for an amount.
"""

from __future__ import annotations

from dataclasses import dataclass

from escalade.errors import EscaladeError
from escalade.policy.models import AuthorityAction, Policy


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


class UnknownAction(EscaladeError, LookupError):
    pass


def _action(policy: Policy, action_id: str) -> AuthorityAction:
    for a in policy.authority.actions:
        if a.id == action_id or (a.name or "").lower() == action_id.lower():
            return a
    known = ", ".join(a.id for a in policy.authority.actions)
    raise UnknownAction(f"'{action_id}' is not an action of the authority matrix ({known})")


def may(
    policy: Policy,
    action_id: str,
    principal: str,
    *,
    lead: bool = False,
    amount: float | None = None,
) -> Verdict:
    """Whether ``principal`` (a team, role or level id) may take the action, and why."""
    action = _action(policy, action_id)
    name = action.name or action.id
    if action.bands:
        if amount is None:
            return Verdict(False, f"'{name}' depends on the amount: give one")
        band = next((b for b in action.bands if b.holds(amount)), None)
        if band is None:
            return Verdict(False, f"no band of '{name}' covers {amount:g}")
        if principal in band.authority and (not band.lead_only or lead):
            return Verdict(True, f"'{name}' {band.describe()}: {principal} decides")
        who = ", ".join(band.authority)
        return Verdict(False, f"'{name}' {band.describe()}: only {who} may decide")
    if principal in action.allow:
        return Verdict(True, f"'{name}': {principal} may (authority matrix)")
    if principal in action.lead_only:
        if lead:
            return Verdict(True, f"'{name}': the {principal} lead may (lead-only cell)")
        return Verdict(False, f"'{name}': only the {principal} lead may (lead-only cell)")
    return Verdict(False, f"'{name}': {principal} may not (authority matrix)")


def person_may(
    policy: Policy, person_id: str, action_id: str, *, amount: float | None = None
) -> Verdict:
    """Whether a person of the policy may take the action (for the amount), trying every
    hat they wear there: each team they belong to (as its lead or not), each role they
    hold, each of their teams' levels. Someone the policy does not name may not."""
    action = _action(policy, action_id)
    name = action.name or action.id
    person = next((p for p in policy.people if p.id == person_id), None)
    if person is None:
        return Verdict(False, f"'{name}': {person_id} is not a person of the policy")
    hats: list[tuple[str, bool]] = []
    for team in policy.teams:
        member = next((m for m in team.members if m.person == person_id), None)
        if member is not None:
            hats.append((team.id, member.role == "lead"))
            if team.level:
                hats.append((team.level, False))
    hats += [(role, False) for role in person.roles]
    refusals: list[Verdict] = []
    for hat, lead in hats:
        verdict = may(policy, action.id, hat, lead=lead, amount=amount)
        if verdict.allowed:
            return verdict
        refusals.append(verdict)
    if not refusals:
        return Verdict(False, f"'{name}': {person_id} belongs to no team or role of the matrix")
    return next((v for v in refusals if "lead" in v.reason), refusals[0])
