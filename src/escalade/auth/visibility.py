"""Confidentiality: which escalations a principal may see. Pure.

An escalation is confidential when its category says ``confidential: true`` or lists
``visible_to``, or when one of its handling rules (the category's, or those a routing rule
added) is of kind ``confidential`` or lists ``visible_to``. A confidential escalation is
seen only by the teams handling it (its current team and the team it was first routed
to) and by the roles and teams its rules name in ``visible_to`` (``admin`` there lets
Escalade admins see it; nobody else sees it by rank alone). A key limited to teams sees
only the escalations currently with those teams, confidential or not. Lists filter in the
database by category and current team, then check each row as a read does, so a list
never shows what a read would hide.

A hidden escalation answers 404 exactly as a missing one does, so that its existence does
not leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from escalade.auth.scopes import Principal
from escalade.policy import Policy
from escalade.policy.models import HandlingKind, HandlingRule


@dataclass(frozen=True)
class Confidentiality:
    visible_to: frozenset[str]
    because: str


def _rule_marks(rule: HandlingRule) -> bool:
    return rule.kind is HandlingKind.confidential or bool(rule.visible_to)


def confidentiality(
    policy: Policy, category: str | None, handling: Iterable[str] = ()
) -> Confidentiality | None:
    """Whether an escalation of ``category`` with these handling rules is confidential,
    who may see it besides its teams, and why."""
    visible: set[str] = set()
    reasons: list[str] = []
    rule_ids = set(handling)
    cat = policy.find_category(category) if category else None
    if cat is not None:
        rule_ids.update(cat.handling)
        if cat.confidential or cat.visible_to:
            visible.update(cat.visible_to)
            reasons.append(f"category '{cat.id}' is confidential")
    for rule in policy.handling:
        if rule.id in rule_ids and _rule_marks(rule):
            visible.update(rule.visible_to)
            reasons.append(f"handling rule '{rule.id}' is confidential")
    if not reasons:
        return None
    return Confidentiality(frozenset(visible), "; ".join(reasons))


def confidential_categories(policy: Policy) -> dict[str, frozenset[str]]:
    """Category id → who may see it besides its teams, for every confidential category
    (to filter lists in the database)."""
    out: dict[str, frozenset[str]] = {}
    for cat in policy.categories:
        conf = confidentiality(policy, cat.id)
        if conf is not None:
            out[cat.id] = conf.visible_to
    return out


def hidden_categories(policy: Policy, who: Principal) -> set[str]:
    """The confidential categories ``who`` may not see by role (their own teams' ones they
    still see: the caller filters on team too)."""
    return {
        cat for cat, visible in confidential_categories(policy).items() if not _named(who, visible)
    }


def _named(who: Principal, visible_to: frozenset[str]) -> bool:
    return bool(visible_to & (who.roles | who.teams)) or (who.is_admin and "admin" in visible_to)


def escalation_teams(team: str | None, snapshot: dict[str, Any]) -> set[str]:
    """The teams handling an escalation: its current team and the one it was routed to."""
    decision = snapshot.get("decision") or {}
    return {t for t in (team, decision.get("team")) if t}


def may_see(
    who: Principal,
    *,
    team: str | None,
    category: str | None,
    snapshot: dict[str, Any],
    policies: Iterable[Policy],
) -> bool:
    """Whether ``who`` may see this escalation. ``policies``: the version it is pinned to
    and the active one; confidential in either is confidential."""
    if who.limited_to is not None and team not in who.limited_to:
        return False
    teams = escalation_teams(team, snapshot)
    decision = snapshot.get("decision") or {}
    handling = decision.get("handling") or []
    for policy in policies:
        conf = confidentiality(policy, category, handling)
        if conf is not None and not (teams & who.teams) and not _named(who, conf.visible_to):
            return False
    return True
