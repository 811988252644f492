"""The policy's ``channels:`` made real: instances built with their secrets, and the
choice of one instance per message.

For each message, the first instance whose ``carries`` holds the message's channel and
whose ``when`` matches (the escalation's team and priority, the person the message is
for, its audience) carries it. A message channel that no instance carries at all goes to
the ``fallback`` (``serve`` and ``worker`` log it and record it on the timeline, as before
channels existed); one that instances carry but none matches is undeliverable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from escalade.channels.links import ActionLinks
from escalade.engine.outbox import Channel, NoChannel
from escalade.policy.models import ChannelConfig, ChannelKind, Policy, SecretRef
from escalade.store import EscalationRow, OutboxMessage
from escalade.store.rows import evolve


class ChannelSetupError(Exception):
    """The policy's channels cannot be built; the message lists every problem."""


def read_secret(ref: SecretRef, environ: Mapping[str, str]) -> str:
    if ref.env is not None:
        value = environ.get(ref.env)
        if not value:
            raise ChannelSetupError(f"environment variable {ref.env} is not set")
        return value
    assert ref.file is not None
    try:
        value = Path(ref.file).read_text().strip()
    except OSError as exc:
        raise ChannelSetupError(f"cannot read secret file {ref.file}: {exc.strerror}") from None
    if not value:
        raise ChannelSetupError(f"secret file {ref.file} is empty")
    return value


def build_channel(cfg: ChannelConfig, policy: Policy, environ: Mapping[str, str]) -> Channel:
    """One channel instance from its configuration (secrets read now)."""

    def secret(ref: SecretRef | None) -> str:
        assert ref is not None  # the policy model requires it for this kind
        return read_secret(ref, environ)

    rank = {p.id: i for i, p in enumerate(policy.priorities)}
    kind = cfg.type
    if kind is ChannelKind.email:
        from escalade.channels.email import EmailChannel

        assert cfg.host is not None and cfg.sender is not None
        return EmailChannel(
            host=cfg.host,
            port=cfg.port,
            security=cfg.security.value,
            username=cfg.username,
            password=read_secret(cfg.password, environ) if cfg.password else None,
            sender=cfg.sender,
            timeout=cfg.timeout,
        )
    if kind is ChannelKind.slack:
        from escalade.channels.slack import SlackChannel

        return SlackChannel(
            webhook_url=secret(cfg.webhook), timeout=cfg.timeout, interactive=cfg.interactive
        )
    if kind is ChannelKind.teams:
        from escalade.channels.teams import TeamsChannel

        return TeamsChannel(webhook_url=secret(cfg.webhook), timeout=cfg.timeout)
    if kind is ChannelKind.webhook:
        from escalade.channels.webhook import WebhookChannel

        assert cfg.url is not None
        return WebhookChannel(url=cfg.url, secret=secret(cfg.signing_secret), timeout=cfg.timeout)
    if kind is ChannelKind.pagerduty:
        from escalade.channels.pagerduty import PagerDutyChannel

        return PagerDutyChannel(
            routing_key=secret(cfg.routing_key),
            url=cfg.url,
            severity=cfg.severity,
            priority_rank=rank,
            timeout=cfg.timeout,
        )
    if kind is ChannelKind.opsgenie:
        from escalade.channels.opsgenie import OpsgenieChannel

        return OpsgenieChannel(
            api_key=secret(cfg.api_key), url=cfg.url, priority_rank=rank, timeout=cfg.timeout
        )
    if kind in (ChannelKind.sms, ChannelKind.voice):
        from escalade.channels.twilio import TwilioChannel

        assert cfg.url is not None and cfg.account is not None and cfg.sender is not None
        account = cfg.account if isinstance(cfg.account, str) else secret(cfg.account)
        return TwilioChannel(
            kind=kind.value,
            url=cfg.url,
            account=account,
            token=secret(cfg.token),
            sender=cfg.sender,
            timeout=cfg.timeout,
        )
    from escalade.channels.apprise import AppriseChannel

    return AppriseChannel(target=secret(cfg.target))


@dataclass(frozen=True)
class Instance:
    config: ChannelConfig
    channel: Channel

    def takes(self, message: OutboxMessage, team: str | None, priority: str | None) -> bool:
        when = self.config.when
        if message.channel not in {c.value for c in self.config.carries}:
            return False
        if when.teams and team not in when.teams:
            return False
        if when.priorities and priority not in when.priorities:
            return False
        if when.people and message.recipient not in when.people:
            return False
        return not when.audiences or message.audience in {a.value for a in when.audiences}


class PolicyChannels:
    """The engine's channel for ``serve`` and ``worker``: routes each message to its
    configured instance (``route``), after ``prepare`` added what channels need."""

    def __init__(
        self,
        policy: Policy,
        instances: list[Instance],
        *,
        fallback: Channel | None = None,
        links: ActionLinks | None = None,
        problems: list[str] | None = None,
    ) -> None:
        self.policy = policy
        self.problems = list(problems or [])  # instances left out (not strict)
        self.instances = instances
        self.fallback = fallback
        self.links = links
        self._carried = {c.value for i in instances for c in i.config.carries}
        self._people = {p.id: p for p in policy.people}
        self._teams = {t.id: t for t in policy.teams}

    # ---- the engine's hooks

    def route(self, message: OutboxMessage) -> tuple[str, Channel]:
        esc = message.payload.get("escalation") or {}
        team, priority = esc.get("team"), esc.get("priority")
        for instance in self.instances:
            if instance.takes(message, team, priority):
                return instance.config.id, instance.channel
        if message.channel not in self._carried and self.fallback is not None:
            return "log", self.fallback
        raise NoChannel(
            f"no channel instance carries '{message.channel}' to '{message.recipient}'"
            f" (team {team}, priority {priority}, audience {message.audience})"
        )

    def send(self, message: OutboxMessage) -> None:
        self.route(message)[1].send(message)

    def prepare(
        self, message: OutboxMessage, esc: EscalationRow | None, now: datetime
    ) -> OutboxMessage:
        """The message with the escalation's ref, subject, team, priority and state, the
        recipient's addresses from the policy, and (for people inside the organisation)
        signed action links. The stored message is not changed."""
        extra: dict[str, Any] = {"addresses": self.addresses(message.recipient)}
        if esc is not None:
            extra["escalation"] = {
                "ref": esc.ref,
                "subject": esc.subject,
                "team": esc.team,
                "priority": esc.priority,
                "state": esc.state,
                "owner": esc.owner,
            }
            if self.links is not None and message.audience != "customer":
                extra["links"] = self.links.links(esc.ref, message.recipient, now)
        return evolve(message, payload={**message.payload, **extra})

    def addresses(self, recipient: str) -> dict[str, str]:
        """Email and phone of a person id or ``team:<id>`` recipient, from the policy."""
        contacts = None
        if recipient in self._people:
            contacts = self._people[recipient].contacts
        elif recipient.startswith("team:") and recipient[5:] in self._teams:
            contacts = self._teams[recipient[5:]].contacts
        if contacts is None:
            return {}
        found = {"email": contacts.email, "phone": contacts.sms or contacts.phone}
        return {k: v for k, v in found.items() if v}


def policy_channels(
    policy: Policy,
    *,
    fallback: Channel | None = None,
    links: ActionLinks | None = None,
    environ: Mapping[str, str] | None = None,
    build: Callable[[ChannelConfig, Policy, Mapping[str, str]], Channel] = build_channel,
    strict: bool = True,
) -> PolicyChannels:
    """Every instance of the policy's ``channels:``. An instance that cannot be built (an
    unset variable, an unreadable file …) is an error listing every such instance
    (``ChannelSetupError``); with ``strict=False`` it is left out instead, named in
    ``problems``, and the message channels only it carried go to the fallback."""
    env = os.environ if environ is None else environ
    instances: list[Instance] = []
    problems: list[str] = []
    for cfg in policy.channels:
        try:
            instances.append(Instance(cfg, build(cfg, policy, env)))
        except (ChannelSetupError, ValueError) as exc:
            problems.append(f"channel '{cfg.id}' ({cfg.type.value}): {exc}")
    if problems and strict:
        raise ChannelSetupError("; ".join(problems))
    return PolicyChannels(policy, instances, fallback=fallback, links=links, problems=problems)
