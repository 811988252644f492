"""Moving up and down an escalation's path and the policy's levels. Pure.

An escalation climbs its category's path first (e.g. Billing → Tier 3 → Finance); past the
end of the path it climbs the policy's levels (L3 → L4 → L5), each level's team taking over.
"""

from __future__ import annotations

from dataclasses import dataclass

from escalade.errors import EscaladeError
from escalade.policy.models import PathStep, Policy


@dataclass(frozen=True)
class Rung:
    team: str | None
    level: str | None
    owner: str | None  # a role within the team ("trust_safety:lead") or None
    via: str  # "path step 2" / "level L4"
    role: str | None = None  # the role a path step names ("lead", "general_counsel")

    @property
    def label(self) -> str:
        return self.owner or self.team or self.level or "?"


class LadderTop(EscaladeError, ValueError):
    """Nothing above: the escalation is at the top of its path and of the levels."""


class LadderBottom(EscaladeError, ValueError):
    """Nothing below."""


def _team_level(policy: Policy, team: str | None) -> str | None:
    t = next((x for x in policy.teams if x.id == team), None) if team else None
    return t.level if t else None


def _rung(policy: Policy, step: PathStep, current_team: str | None, via: str) -> Rung:
    team = step.team
    level = step.level
    if team is None and step.role is not None:
        # a path step naming a company role (CFO, CEO), or the lead or manager without a
        # team, keeps the team and names the person
        team = current_team
    if team is None and level is not None:
        team = policy.get_level(level).team or current_team
    if level is None:
        level = _team_level(policy, team)
    owner = f"{team}:{step.role}" if step.role and team else (step.role or None)
    return Rung(team, level, owner, via, step.role)


def path_rungs(policy: Policy, category_id: str | None, start_team: str | None) -> list[Rung]:
    """The owner then each path step, as rungs."""
    rungs = [Rung(start_team, _team_level(policy, start_team), None, "initial owner")]
    if category_id is None:
        return rungs
    cat = policy.get_category(category_id)
    team = start_team
    for i, step in enumerate(cat.path, start=1):
        rung = _rung(policy, step, team, f"path step {i} of category '{cat.id}'")
        rungs.append(rung)
        team = rung.team
    return rungs


def _position(rungs: list[Rung], team: str | None, owner: str | None) -> int:
    """Where the escalation stands on its path: the rung of its owner role, else of its team.

    ``owner`` is also the person who acknowledged or took it ("lena"), which names no rung;
    the team then still says where it is on the path.
    """
    if owner:
        for i in range(len(rungs) - 1, -1, -1):
            if rungs[i].owner == owner:
                return i
    for i in range(len(rungs) - 1, -1, -1):
        if rungs[i].owner is None and rungs[i].team == team:
            return i
    return -1


def next_up(
    policy: Policy,
    category_id: str | None,
    start_team: str | None,
    team: str | None,
    level: str | None,
    owner: str | None,
) -> Rung:
    """The rung above the escalation's current place; LadderTop when there is none."""
    rungs = path_rungs(policy, category_id, start_team)
    pos = _position(rungs, team, owner)
    if 0 <= pos < len(rungs) - 1:
        for rung in rungs[pos + 1 :]:
            # a path step to a tier below where the escalation already is (a ladder raised
            # it) is not a step up: Tier 3 not answering never sends it back to Tier 2
            below = policy.is_level(rung.level) and policy.raises_level(rung.level, level)
            if not (policy.is_level(level) and below):
                return rung
    ids = [lv.id for lv in policy.levels]
    if level in ids:
        i = ids.index(level)
        if i + 1 < len(ids):
            nxt = policy.levels[i + 1]
            return Rung(nxt.team or team, nxt.id, None, f"level {nxt.id} (above {level})")
    raise LadderTop(
        f"already at the top: '{owner or team}' is the end of the path"
        + (f" and level '{level}' the highest level" if level else "")
    )


def next_down(
    policy: Policy,
    category_id: str | None,
    start_team: str | None,
    team: str | None,
    level: str | None,
    owner: str | None,
    to: str | None = None,
) -> Rung:
    """The rung below (or the named level/team ``to``); LadderBottom when there is none."""
    if to is not None:
        lv = next((x for x in policy.levels if x.id == to), None)
        if lv is not None:
            if level in [x.id for x in policy.levels] and policy.level_rank(
                to
            ) >= policy.level_rank(level or to):
                raise LadderBottom(f"level '{to}' is not below the current level '{level}'")
            return Rung(lv.team or team, lv.id, None, f"level {lv.id}")
        t = next((x for x in policy.teams if x.id == to), None)
        if t is not None:
            return Rung(t.id, t.level, None, f"team {t.id}")
        raise LadderBottom(f"'{to}' is neither a level nor a team of the policy")
    rungs = path_rungs(policy, category_id, start_team)
    pos = _position(rungs, team, owner)
    if pos > 0:
        return rungs[pos - 1]
    ids = [lv.id for lv in policy.levels]
    if level in ids and ids.index(level) > 0:
        prev = policy.levels[ids.index(level) - 1]
        return Rung(prev.team or team, prev.id, None, f"level {prev.id} (below {level})")
    raise LadderBottom("already at the bottom of the path and the levels")
