"""Editing rights: who may change policies, schedules and overrides. Pure.

Escalade admins always may. A team's leads always may edit that team's schedules and
overrides. Beyond that, the policy's ``editing`` section names the roles (policy roles or
Escalade roles) that may; by default nobody else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from escalade.auth.scopes import Principal
from escalade.policy import Policy

Thing = Literal["policies", "schedules", "overrides"]


@dataclass(frozen=True)
class EditDecision:
    allowed: bool
    reason: str


def may_edit(policy: Policy, who: Principal, thing: Thing, team: str | None = None) -> EditDecision:
    """May ``who`` change ``thing`` (of ``team``, for schedules and overrides)?"""
    if who.is_admin:
        return EditDecision(True, f"{who.actor} is an admin")
    if thing != "policies" and team is not None and team in who.lead_of:
        return EditDecision(True, f"{who.actor} leads {team}")
    granted = set(getattr(policy.editing, thing))
    held = sorted(granted & who.roles)
    if held:
        return EditDecision(True, f"editing.{thing} grants it to {held[0]}")
    who_may = ["admins"]
    if thing != "policies":
        who_may.append(f"the leads of {team}" if team else "the team's leads")
    who_may += sorted(granted)
    return EditDecision(False, f"only {', '.join(who_may)} may edit {thing}")
