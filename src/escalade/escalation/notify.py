"""Who hears about what, on which channel, and with which words. Pure.

Recipients in policies name people, roles, teams, on-call schedules, the owning team, its
manager or the customer; here they become concrete addresses. Handling rules act here too:
``never_in_chat`` moves a chat message to email; ``no_customer_reply`` /
``no_customer_alert`` / ``do_not_engage`` hold every customer message back, and every
status-page post (the status page speaks to all customers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2

from escalade.oncall.schedule import Override, on_call
from escalade.policy import templates
from escalade.policy.models import (
    Audience,
    Channel,
    HandlingKind,
    NotifyStyle,
    Policy,
    Recipient,
)

CUSTOMER_SILENCE = {
    HandlingKind.no_customer_reply,
    HandlingKind.no_customer_alert,
    HandlingKind.do_not_engage,
}


_PUBLIC = (Audience.customer, Audience.status_page)


@dataclass(frozen=True)
class Message:
    channel: str
    to: str
    audience: str
    template: str | None
    subject: str = ""
    body: str = ""
    via: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Held:
    """A message the handling rules kept back, and why."""

    message: Message
    rule: str
    reason: str
    rerouted: bool = False  # sent on another channel instead (e.g. never in chat → email)


def style_channel(style: NotifyStyle | str | None) -> str:
    return {"page": Channel.pagerduty, "post": Channel.chat, "queue": Channel.email}.get(
        str(style or "queue"), Channel.email
    ).value


def resolve(
    policy: Policy,
    who: Recipient,
    *,
    team: str | None,
    customer_email: str | None,
    at: datetime,
    overrides: Mapping[str, Sequence[Override]] | None = None,
) -> list[tuple[str, str]]:
    """Concrete recipients ``(to, via)`` of a policy recipient at time ``at``."""
    if who.person:
        return [(who.person, f"person:{who.person}")]
    if who.role:
        holders = [p.id for p in policy.people if who.role in p.roles]
        if who.role == "lead" and team:
            holders = _team_leads(policy, team)
        return [(h, f"role:{who.role}") for h in holders] or [(f"role:{who.role}", "unstaffed")]
    if who.team:
        return [(f"team:{who.team}", f"team:{who.team}")]
    if who.schedule:
        return _schedule(policy, who.schedule, at, (overrides or {}).get(who.schedule, ()))
    if who.queue:
        return [(f"queue:{who.queue}", "queue")]
    if who.owner:
        return [(f"team:{team}", "owner")] if team else []
    if who.customer:
        return [(customer_email, "customer")] if customer_email else []
    if who.manager:
        return manager_of(policy, team)
    if who.everyone:
        return everyone(policy)
    if who.status_page:
        page = policy.status_page
        return [(page.address, "status page")] if page else [("status_page", "no status page")]
    return []


ALL_HANDS = "all hands"  # the 'via' of every all-hands message


def everyone(policy: Policy) -> list[tuple[str, str]]:
    """All hands: every person of every team, once each (a team without members by its
    own address, so nobody is left out)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for t in policy.teams:
        people = [m.person for m in t.members] or [f"team:{t.id}"]
        for who in people:
            if who not in seen:
                seen.add(who)
                out.append((who, f"{ALL_HANDS}:{t.id}"))
    return out


def _team_leads(policy: Policy, team: str) -> list[str]:
    t = next((x for x in policy.teams if x.id == team), None)
    return t.leads() if t else []


def _schedule(
    policy: Policy, schedule_id: str, at: datetime, overrides: Sequence[Override]
) -> list[tuple[str, str]]:
    schedule = next((s for s in policy.schedules if s.id == schedule_id), None)
    if schedule is None:
        return [(f"schedule:{schedule_id}", "unknown schedule")]
    people = on_call(schedule, at, overrides)
    return [(p, f"schedule:{schedule_id}") for p in people[:1]] or [
        (f"schedule:{schedule_id}", "nobody on call")
    ]


def manager_of(policy: Policy, team: str | None) -> list[tuple[str, str]]:
    t = next((x for x in policy.teams if x.id == team), None) if team else None
    if t is not None and t.manager is None and t.leads():
        return [(lead, f"lead of {team}") for lead in t.leads()]  # no manager: its leads
    if t is None or t.manager is None:
        return [(f"manager:{team}", "no manager in policy")] if team else []
    if t.manager in {p.id for p in policy.people}:
        return [(t.manager, f"manager of {team}")]
    holders = [p.id for p in policy.people if t.manager in p.roles]
    return [(h, f"role:{t.manager}") for h in holders] or [(f"role:{t.manager}", "unstaffed")]


def render(policy: Policy, template_id: str | None, context: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of a policy template, or ``("", "")`` when there is none."""
    if template_id is None:
        return "", ""
    tpl = next((t for t in policy.templates if t.id == template_id), None)
    if tpl is None:
        return "", ""
    return _render_text(template_id, tpl.subject or "", tpl.body, context)


def _render_text(name: str, subject: str, body: str, context: dict[str, Any]) -> tuple[str, str]:
    try:
        return (
            templates.compiled(subject).render(**context) if subject else "",
            templates.compiled(body).render(**context),
        )
    except jinja2.TemplateError as exc:  # checked at load; runtime data may still fail
        return f"[template {name} failed: {exc}]", ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    template: str  # the policy template's id, or ``builtin:<audience>[:<channel>]``


def default_template(policy: Policy, audience: str, channel: str) -> tuple[str, str, str]:
    """``(name, subject, body)`` of the template a message names none of uses: the
    policy's ``default: true`` template for its audience and channel, else for its
    audience on any channel, else Escalade's built-in one."""
    for want in (channel, None):
        for t in policy.templates:
            if (
                t.default
                and t.audience.value == audience
                and (t.channel.value if t.channel else None) == want
            ):
                return t.id, t.subject or "", t.body
    return _builtin(audience, channel)


def _builtin(audience: str, channel: str) -> tuple[str, str, str]:
    for key in ((audience, channel), (audience, None)):
        if key in templates.BUILTIN:
            subject, body = templates.BUILTIN[key]
            return ":".join(["builtin", *[k for k in key if k]]), subject, body
    subject, body = templates.BUILTIN[("internal", None)]
    return "builtin:internal", subject, body


def render_message(policy: Policy, message: Message, context: dict[str, Any]) -> Rendered:
    """A message's subject and body from its template (or the default one for its
    audience and channel). Every message but the customer's also shows the escalation's
    handling: what is never to be done, where it is forwarded (``HANDLING_SECTION``),
    added after the template's text when the template does not show ``escalation.never``
    itself."""
    tpl = next((t for t in policy.templates if t.id == message.template), None)
    if tpl is not None:
        name, subject, body = tpl.id, tpl.subject or "", tpl.body
    else:
        name, subject, body = default_template(policy, message.audience, message.channel)
    if not subject:  # a template without a subject line gets the built-in one's
        subject = _builtin(message.audience, message.channel)[1]
    if message.audience != Audience.customer.value and "escalation.never" not in body:
        body = body.rstrip("\n") + "\n" + templates.HANDLING_SECTION
    rendered_subject, rendered_body = _render_text(
        name, subject, body, {**context, "message": message.data}
    )
    return Rendered(rendered_subject, rendered_body.strip("\n") + "\n", name)


def apply_handling(
    policy: Policy, handling: Sequence[str], messages: Sequence[Message]
) -> tuple[list[Message], list[Held]]:
    """Messages as the handling rules allow them, and those held back with the reason."""
    rules = [h for h in policy.handling if h.id in handling]
    out: list[Message] = []
    held: list[Held] = []
    for m in messages:
        blocked = False
        for rule in rules:
            # the public status page is silent too: it speaks to every customer at once
            if m.audience in _PUBLIC and rule.kind in CUSTOMER_SILENCE:
                held.append(Held(m, rule.id, rule.description or f"{rule.kind.value}"))
                blocked = True
                break
            forbidden = set(rule.forbid_channels) | (
                {Channel.chat} if rule.kind is HandlingKind.never_in_chat else set()
            )
            if m.channel in {c.value for c in forbidden}:
                email = _email_for(policy, m)
                if email is None:
                    reason = f"never on {m.channel}, and no email address for it"
                    held.append(Held(m, rule.id, reason))
                    blocked = True
                    break
                held.append(Held(m, rule.id, f"never on {m.channel}: sent by email instead", True))
                m = Message(
                    Channel.email.value,
                    email,
                    m.audience,
                    m.template,
                    m.subject,
                    m.body,
                    m.via,
                    m.data,
                )
        if not blocked:
            out.append(m)
    return out, held


def permitted_only(
    policy: Policy,
    messages: Sequence[Message],
    *,
    teams: set[str],
    visible_to: frozenset[str],
    forward_to: Sequence[str] = (),
    rule: str = "confidential",
    because: str = "confidential",
) -> tuple[list[Message], list[Held]]:
    """For a confidential escalation: the messages whose recipient may see it, and those
    held. Allowed: the customer's own messages; the teams handling it and the roles or
    teams in ``visible_to`` (by their contacts); people holding such a role or belonging
    to such a team; the handling rules' ``forward_to`` addresses. Anything else (a shared
    channel, a person or team outside them) is held, naming why it is confidential."""
    open_teams = teams | set(visible_to)
    contacts: set[str] = set(forward_to)
    for t in policy.teams:
        if t.id in open_teams:
            contacts.update(v for v in t.contacts.model_dump().values() if isinstance(v, str))
    members = {m.person for t in policy.teams if t.id in open_teams for m in t.members} | {
        p.id for p in policy.people if set(p.roles) & visible_to
    }
    for p in policy.people:
        if p.id in members:
            contacts.update(v for v in p.contacts.model_dump().values() if isinstance(v, str))
    allowed: list[Message] = []
    held: list[Held] = []
    for m in messages:
        team = m.to[5:] if m.to.startswith("team:") else None
        if (
            m.audience == Audience.customer.value
            or m.to in members
            or m.to in contacts
            or (team is not None and team in open_teams)
        ):
            allowed.append(m)
            continue
        who = ", ".join(sorted(open_teams)) or "its own teams"
        reason = f"{because}: only {who} may be told, not {m.to}"
        held.append(Held(m, rule, reason))
    return allowed, held


def _email_for(policy: Policy, m: Message) -> str | None:
    """Where a message moved off a forbidden channel goes by email: the team's email when
    it was for a team, the address or person itself otherwise; None for a bare chat room."""
    if m.via and m.via.startswith("team:"):
        team = next((t for t in policy.teams if t.id == m.via[5:]), None)
        if team is not None and team.contacts.email:
            return team.contacts.email
    if m.to.startswith(("#", "@")):
        return None
    return m.to
