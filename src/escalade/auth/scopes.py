"""Scopes and roles, and the principal a request acts as. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from escalade.policy import Policy


class Scope(StrEnum):
    """What an API key (or a signed-in person) may call.

    ``read``: look (escalations, the policy, routing decisions); ``write``: raise and act
    on escalations; ``intake``: only the intake endpoints (alerts, activity, webhooks);
    ``admin``: everything, including people, keys and policy versions."""

    read = "read"
    write = "write"
    intake = "intake"
    admin = "admin"


class Role(StrEnum):
    """Escalade's own roles for people (policy roles such as ``ciso`` come on top)."""

    admin = "admin"
    lead = "lead"
    responder = "responder"
    viewer = "viewer"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.admin: frozenset({Scope.admin, Scope.read, Scope.write}),
    Role.lead: frozenset({Scope.read, Scope.write}),
    Role.responder: frozenset({Scope.read, Scope.write}),
    Role.viewer: frozenset({Scope.read}),
}


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Scopes from ``read``, ``write,read`` …; a clear error for an unknown one."""
    out: list[Scope] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            try:
                scope = Scope(name)
            except ValueError:
                known = ", ".join(s.value for s in Scope)
                raise ValueError(f"unknown scope '{part.strip()}': use {known}") from None
            if scope not in out:
                out.append(scope)
    if not out:
        raise ValueError("give at least one scope: read, write, intake or admin")
    return out


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role '{value}': use {known}") from None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as.

    ``teams``: the teams they belong to (a person) or act for (a key); ``limited_to``:
    the only teams whose escalations they may see or touch (a key limited to teams), None
    for no such limit; ``lead_of``: teams they lead; ``roles``: their Escalade role and
    policy roles; ``levels``: the levels of their teams."""

    kind: str  # "key", "user" or "anonymous"
    name: str
    scopes: frozenset[Scope]
    teams: frozenset[str] = frozenset()
    limited_to: frozenset[str] | None = None
    lead_of: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    levels: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return Scope.admin in self.scopes

    def has(self, scope: Scope) -> bool:
        """Admin holds every scope; the others hold only themselves."""
        return scope in self.scopes or Scope.admin in self.scopes

    @property
    def actor(self) -> str:
        """How it is named on timelines and in the audit log."""
        return f"key:{self.name}" if self.kind == "key" else self.name


def key_principal(
    name: str, scopes: Iterable[str], teams: Iterable[str], policy: Policy | None = None
) -> Principal:
    team_set = frozenset(teams)
    return Principal(
        kind="key",
        name=name,
        scopes=frozenset(Scope(s) for s in scopes),
        teams=team_set,
        limited_to=team_set or None,
        levels=_levels(policy, team_set),
    )


def user_principal(
    email: str,
    role: str,
    teams: Iterable[str],
    *,
    person: str | None = None,
    policy: Policy | None = None,
) -> Principal:
    """A person: their Escalade role and teams, plus what the policy says of them (the
    person whose id is ``person`` or whose e-mail matches): policy roles, the teams they
    are members of, and the teams they lead. A ``lead`` leads every team of theirs."""
    r = Role(role)
    team_set = set(teams)
    lead_of: set[str] = set()
    roles: set[str] = {r.value}
    if policy is not None:
        me = next(
            (
                p
                for p in policy.people
                if p.id == person
                or (p.contacts.email and p.contacts.email.lower() == email.lower())
            ),
            None,
        )
        if me is not None:
            roles.update(me.roles)
            for t in policy.teams:
                for m in t.members:
                    if m.person == me.id:
                        team_set.add(t.id)
                        if m.role == "lead":
                            lead_of.add(t.id)
    if r is Role.lead:
        lead_of |= team_set
    return Principal(
        kind="user",
        name=email.lower(),
        scopes=ROLE_SCOPES[r],
        teams=frozenset(team_set),
        lead_of=frozenset(lead_of),
        roles=frozenset(roles),
        levels=_levels(policy, team_set),
    )


def _levels(policy: Policy | None, teams: Iterable[str]) -> frozenset[str]:
    if policy is None:
        return frozenset()
    wanted = set(teams)
    return frozenset(t.level for t in policy.teams if t.id in wanted and t.level)
