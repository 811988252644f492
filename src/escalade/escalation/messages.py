"""Which messages an event sends, to whom and on which channel. Pure.

The service hands the planned messages to ``notify.apply_handling`` and then to the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from escalade.durations import format_duration
from escalade.escalation.notify import Message, manager_of, resolve, style_channel
from escalade.escalation.triggers import InFlight
from escalade.oncall.schedule import Override
from escalade.policy.models import Audience, Channel, NotificationRule, Policy, Recipient
from escalade.routing.models import Decision

Overrides = Mapping[str, Sequence[Override]]


class Escalation(InFlight, Protocol):
    """What message templates read of an escalation (a stored row satisfies it): what
    trigger conditions read, and its ref, state, team, level, owner and creation time."""

    @property
    def ref(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def team(self) -> str | None: ...
    @property
    def level(self) -> str | None: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def priority_style(policy: Policy, priority: str | None) -> str:
    p = next((x for x in policy.priorities if x.id == priority), None)
    return p.notify.value if p else "queue"


def team_messages(
    policy: Policy,
    team_id: str,
    style: str,
    at: datetime,
    overrides: Overrides | None,
    *,
    template: str | None = None,
    data: dict[str, Any] | None = None,
) -> list[Message]:
    """How a team is told, following the priority's style and the team's own contacts:
    a page goes to its on-call schedule (or PagerDuty service); a post to its chat
    channel; otherwise email. A contact the team lacks is never invented."""
    team = next((t for t in policy.teams if t.id == team_id), None)
    if team is None:
        return []
    c = team.contacts
    extra = dict(data or {})
    if c.mention:
        extra.setdefault("mention", c.mention)

    def msg(channel: str, to: str, via: str) -> Message:
        return Message(channel, to, Audience.internal.value, template, via=via, data=extra)

    if style == "page":
        if team.schedule:
            people = resolve(
                policy,
                Recipient(schedule=team.schedule),
                team=team_id,
                customer_email=None,
                at=at,
                overrides=overrides,
            )
            return [msg(Channel.pagerduty.value, to, via) for to, via in people]
        if c.pagerduty:
            return [msg(Channel.pagerduty.value, c.pagerduty, f"team:{team_id}")]
        if c.opsgenie:
            return [msg(Channel.opsgenie.value, c.opsgenie, f"team:{team_id}")]
        if c.phone:
            return [msg(Channel.phone.value, c.phone, f"team:{team_id}")]
    if style in ("page", "post") and c.chat:
        return [msg(Channel.chat.value, c.chat, f"team:{team_id}")]
    if c.email:
        return [msg(Channel.email.value, c.email, f"team:{team_id}")]
    if c.chat:
        return [msg(Channel.chat.value, c.chat, f"team:{team_id}")]
    if team.members:
        # no shared address: the team is its people (seed 002's Tier 4 lists roles, no
        # contact), each reached in the priority's style at their own address
        return [msg(style_channel(style), m.person, f"team:{team_id} member") for m in team.members]
    return [msg(style_channel(style), f"team:{team_id}", f"team:{team_id}")]


def role_messages(
    policy: Policy,
    role: str,
    team_id: str | None,
    style: str,
    at: datetime,
    overrides: Overrides | None,
    *,
    data: dict[str, Any] | None = None,
) -> list[Message]:
    """How a path step naming a role ("T&S Lead", "General Counsel", "CEO/CMO") reaches
    it: each person holding the role (``lead``: the team's leads; "CEO/CMO": both) by
    email, and the person on call in the role's schedule where it has one (paged when the
    priority pages). Empty when nobody holds the role: the caller then tells the team
    instead."""
    extra = {**(data or {}), "role": role}
    if role == "lead":
        holders = _leads(policy, team_id)
    elif role == "manager":
        holders = [
            to
            for to, via in manager_of(policy, team_id)
            if via.startswith(("manager ", "lead ", "role:"))
            and not to.startswith(("role:", "manager:"))
        ]
    else:
        holders = [p.id for p in policy.people if role in p.roles]
    out = [
        Message(
            Channel.email.value,
            h,
            Audience.internal.value,
            None,
            via=f"role:{role}",
            data=dict(extra),
        )
        for h in holders
    ]
    spec = next((r for r in policy.roles if r.id == role), None)
    schedule = spec.schedule if spec else None
    if schedule:
        channel = Channel.pagerduty.value if style == "page" else Channel.email.value
        for to, via in resolve(
            policy,
            Recipient(schedule=schedule),
            team=team_id,
            customer_email=None,
            at=at,
            overrides=overrides,
        ):
            if to not in holders:
                out.append(
                    Message(channel, to, Audience.internal.value, None, via=via, data=dict(extra))
                )
    return out


def _leads(policy: Policy, team_id: str | None) -> list[str]:
    team = next((t for t in policy.teams if t.id == team_id), None) if team_id else None
    return team.leads() if team else []


_STYLE_OF_CHANNEL = {
    "pagerduty": "page",
    "opsgenie": "page",
    "phone": "page",
    "sms": "page",
    "chat": "post",
}


def recipient_messages(
    policy: Policy,
    who: Recipient,
    channel: str,
    *,
    audience: str,
    template: str | None,
    team: str | None,
    customer_email: str | None,
    at: datetime,
    overrides: Overrides | None,
    data: dict[str, Any] | None = None,
) -> list[Message]:
    """Messages to one policy recipient on a channel. A team is reached through its own
    contact for that channel, or else the way its contacts allow (never an invented
    address)."""
    if who.team:
        target = next((t for t in policy.teams if t.id == who.team), None)
        address = getattr(target.contacts, channel, None) if target else None
        if address:
            return [
                Message(
                    channel,
                    address,
                    audience,
                    template,
                    via=f"team:{who.team}",
                    data=dict(data or {}),
                )
            ]
        return [
            Message(m.channel, m.to, audience, template, via=m.via, data={**m.data, **(data or {})})
            for m in team_messages(
                policy, who.team, _STYLE_OF_CHANNEL.get(channel, "queue"), at, overrides
            )
        ]
    if who.owner and team:
        return recipient_messages(
            policy,
            Recipient(team=team),
            channel,
            audience=audience,
            template=template,
            team=team,
            customer_email=customer_email,
            at=at,
            overrides=overrides,
            data=data,
        )
    return [
        Message(channel, to, audience, template, via=via, data=dict(data or {}))
        for to, via in resolve(
            policy, who, team=team, customer_email=customer_email, at=at, overrides=overrides
        )
    ]


def with_ref(messages: Sequence[Message], ref: str) -> list[Message]:
    """Put the escalation's ref where an address says ``{ref}`` (``#war-room-{ref}``: one
    incident channel per escalation)."""
    return [replace(m, to=m.to.replace("{ref}", ref)) if "{ref}" in m.to else m for m in messages]


def manager_messages(policy: Policy, team_id: str | None, why: str) -> list[Message]:
    """The owning team's manager, else its leads (``manager_of``); nobody invented."""
    targets = [t for t in manager_of(policy, team_id) if t[1] != "no manager in policy"]
    return [
        Message(Channel.email.value, to, Audience.internal.value, None, via=via, data={"why": why})
        for to, via in targets
    ]


def _rule_applies(
    rule: NotificationRule, category: str | None, priority: str | None, team: str | None
) -> bool:
    if rule.priorities and priority not in rule.priorities:
        return False
    if rule.teams and team not in rule.teams:
        return False
    when = rule.when
    if when is not None:
        if when.category and category not in when.category:
            return False
        if when.priority and priority not in when.priority:
            return False
    return True


def _tells_team(rule: NotificationRule) -> bool:
    """Whether a rule is the owning team's own notice (then the team is not told again by
    the priority's style): not one to the customer, the status page, all hands, or an
    incident channel of its own ('{ref}' in the address)."""
    if rule.audience in (Audience.customer, Audience.status_page):
        return False
    if rule.to.customer or rule.to.status_page or rule.to.everyone:
        return False
    return not (rule.address and "{ref}" in rule.address)


def _rule_messages(
    policy: Policy,
    rule: NotificationRule,
    team: str | None,
    customer_email: str | None,
    at: datetime,
    overrides: Overrides | None,
) -> list[Message]:
    data = {"mention": rule.mention} if rule.mention else {}
    if rule.address:
        return [
            Message(
                rule.channel.value,
                rule.address,
                rule.audience.value,
                rule.template,
                via=f"notification rule {rule.id}",
                data=data,
            )
        ]
    return recipient_messages(
        policy,
        rule.to,
        rule.channel.value,
        audience=rule.audience.value,
        template=rule.template,
        team=team,
        customer_email=customer_email,
        at=at,
        overrides=overrides,
        data=data,
    )


def resolved_messages(
    policy: Policy,
    esc: Escalation,
    at: datetime,
    overrides: Overrides | None,
) -> list[Message]:
    """Who hears that an escalation was resolved: the notification rules with ``on:
    resolved`` that apply to it as it is now (its category, priority and team), e.g. seed
    002's post-resolution summary."""
    messages: list[Message] = []
    email = (esc.customer or {}).get("email")
    for rule in policy.notifications:
        if rule.on == "resolved" and _rule_applies(rule, esc.category, esc.priority, esc.team):
            messages.extend(_rule_messages(policy, rule, esc.team, email, at, overrides))
    return messages


def created_messages(
    policy: Policy,
    decision: Decision,
    customer_email: str | None,
    at: datetime,
    overrides: Overrides | None,
) -> list[Message]:
    """Who hears of a new escalation: the policy's notification rules (``on: created``,
    the default); the owning and engaged teams not covered by a rule (by the priority's
    style); people a rule or trigger asked to inform; and the customer's
    acknowledgement."""
    messages: list[Message] = []
    covered: set[str] = set()
    rules = [r for r in policy.notifications if r.on == "created"]
    customer_ruled = any(r.audience is Audience.customer or r.to.customer for r in rules)
    for rule in rules:
        if not _rule_applies(rule, decision.category, decision.priority, decision.team):
            continue
        messages.extend(_rule_messages(policy, rule, decision.team, customer_email, at, overrides))
        if _tells_team(rule):
            covered.update(
                t
                for t in (rule.teams or [decision.team])
                if not (rule.to.owner and rule.address) or _own_contact(policy, t, rule.address)
            )
    style = priority_style(policy, decision.priority)
    for team in [decision.team, *decision.also]:
        if team and team not in covered:
            messages.extend(team_messages(policy, team, style, at, overrides))
    role_ids = {r.id for r in policy.roles}
    team_ids = {t.id for t in policy.teams}
    for who_id in decision.notify:
        kind = "role" if who_id in role_ids else "team" if who_id in team_ids else "person"
        messages.extend(
            recipient_messages(
                policy,
                Recipient.model_validate({kind: who_id}),
                Channel.email.value,
                audience=Audience.stakeholder.value,
                template=None,
                team=decision.team,
                customer_email=None,
                at=at,
                overrides=overrides,
            )
        )
    messages.extend(forwarded_messages(policy, decision.handling, messages))
    if customer_email and not customer_ruled:
        # no rule speaks to customers: acknowledge with the first customer template
        tpl = next(
            (
                t
                for t in policy.templates
                if t.audience is Audience.customer
                and (not t.priorities or decision.priority in t.priorities)
            ),
            None,
        )
        if tpl is not None:
            channel = tpl.channel.value if tpl.channel else Channel.email.value
            messages.append(
                Message(channel, customer_email, Audience.customer.value, tpl.id, via="customer")
            )
    return messages


def _own_contact(policy: Policy, team_id: str | None, address: str) -> bool:
    """Whether ``address`` is one of the team's own contacts, or the team has none (a rule
    for the owner sending to a shared room such as #escalations then stands for it). A
    rule for whoever owns the escalation that only happens to match, with an address the
    team does not own, never stands in for the team's own contact (seed 003: legal@,
    media@, fraud@)."""
    team = next((t for t in policy.teams if t.id == team_id), None) if team_id else None
    if team is None:
        return True
    own = {
        v
        for k, v in team.contacts.model_dump().items()
        if v and k not in ("note", "mention") and isinstance(v, str)
    }
    return not own or address in own


def forwarded_messages(
    policy: Policy, handling: Sequence[str], planned: Sequence[Message] = ()
) -> list[Message]:
    """The handling rules' ``forward_to``: each escalation under such a rule is forwarded
    to that address by email ("Forward to legal@", "Alert fraud@"), unless a message to
    that address is already planned."""
    seen = {m.to for m in planned}
    out: list[Message] = []
    for rule in policy.handling:
        if rule.id not in handling or not rule.forward_to or rule.forward_to in seen:
            continue
        seen.add(rule.forward_to)
        out.append(
            Message(
                Channel.email.value,
                rule.forward_to,
                Audience.internal.value,
                None,
                via=f"handling rule {rule.id}: forward to",
                data={"handling": rule.id},
            )
        )
    return out


def ticket_notes(policy: Policy, handling: Sequence[str]) -> list[tuple[str, str]]:
    """``(rule id, note)`` for each handling rule that asks for a note in the ticket
    ("Escalated to Legal", "Media Inquiry"), in policy order."""
    return [
        (rule.id, rule.ticket_note)
        for rule in policy.handling
        if rule.id in handling and rule.ticket_note
    ]


def handling_of(policy: Policy | None, handling: Sequence[str]) -> dict[str, list[str]]:
    """What the escalation's handling rules say people must never do, where it is
    forwarded and which notes the ticket gets (in the order of the rules)."""
    rules = [h for h in policy.handling if h.id in handling] if policy else []
    return {
        "never": [item for r in rules for item in r.never],
        "forward_to": [r.forward_to for r in rules if r.forward_to],
        "ticket_notes": [r.ticket_note for r in rules if r.ticket_note],
    }


def template_context(
    esc: Escalation,
    policy: Policy | None = None,
    now: datetime | None = None,
    *,
    resolution: str | None = None,
    resolved_at: datetime | None = None,
) -> dict[str, Any]:
    """What message templates see: ``escalation`` (and its parts at the top level). Its
    keys are ``policy.templates.ESCALATION_KEYS``; a value the escalation lacks is left
    out and renders as ``(not given)``."""
    d = esc.snapshot.get("decision", {})
    pkg = esc.package
    team = next((t for t in policy.teams if t.id == esc.team), None) if policy else None
    prio = policy.find_priority(esc.priority) if policy and esc.priority else None
    cat = policy.find_category(esc.category) if policy and esc.category else None
    owner = next((p for p in policy.people if p.id == esc.owner), None) if policy else None
    owner_name = (owner.name or owner.id) if owner else esc.owner
    escalation = {
        "ref": esc.ref,
        "subject": esc.subject,
        "description": pkg.get("description"),
        "team": esc.team,
        "team_name": (team.name or team.id) if team else esc.team,
        "age": format_duration(now - esc.created_at) if now is not None else None,
        "level": esc.level,
        "priority": esc.priority,
        "priority_name": (prio.name or prio.id) if prio else esc.priority,
        "category": esc.category,
        "category_name": (cat.name or cat.id) if cat else esc.category,
        "state": esc.state,
        "status": esc.state,
        "owner": esc.owner,
        "assignee_name": owner_name,
        "agent_name": owner_name,
        "customer": esc.customer,
        "impact": pkg.get("impact", {}),
        "fields": pkg.get("fields", {}),
        "history": pkg.get("history", {}),
        "technical_context": pkg.get("technical_context", {}),
        "signals": d.get("signals") or {},
        "ticket": {"id": esc.ref, **pkg.get("ticket", {})},
        "channel": pkg.get("channel"),
        "amount": pkg.get("amount"),
        "reasons": d.get("reasons", []),
        "response_target": d.get("response_target"),
        "tags": d.get("tags", []),
        "handling": d.get("handling", []),
        "missing": d.get("missing", []),
        **handling_of(policy, d.get("handling", [])),
        "created_at": _iso(esc.created_at),
        "resolved_at": _iso(resolved_at) if resolved_at else None,
        "resolution": resolution,
        "resolution_time": format_duration(resolved_at - esc.created_at) if resolved_at else None,
    }
    # a value the escalation lacks is left out, so that it renders "(not given)" and
    # ``| default('…')`` can choose other words for it
    escalation = {k: v for k, v in escalation.items() if v is not None}
    return {
        "ref": esc.ref,
        "escalation": escalation,
        "customer": esc.customer,
        "package": pkg,
        "decision": d,
        "ticket": escalation["ticket"],
        "impact": escalation["impact"],
        "fields": escalation["fields"],
    }
