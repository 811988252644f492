"""The policy language: frozen, typed models of an escalation policy.

A policy file is parsed once at the edge (``policy.loader``) into these objects; the core
never sees a raw dict. Every section of the five seed processes has a home here: levels,
teams and people, calendars, priorities with their targets, categories with owners and
escalation paths, routing rules, ladders, triggers, on-call schedules, the authority
matrix, handling rules, message templates and metric targets.

Cross-references (a category's owner, a ladder step's role, …) are checked by
``policy.validate``, which knows where each value came from in the file.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from escalade.durations import format_duration, parse_duration

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*((\d+(\.\d+)?\s*(w|d|h|m|min|s)\s*)+|0|immediate)$",
            "description": "A duration such as 90s, 15m, 1h30m, 2d, 1w or 'immediate'.",
        }
    ),
]

Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=80,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="An identifier: letters, digits, '_', '-', '.'.",
    ),
]


class Model(BaseModel):
    """Base for policy models: frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Channel(StrEnum):
    """Ways an escalation arrives or a message leaves."""

    email = "email"
    chat = "chat"
    phone = "phone"
    sms = "sms"
    web = "web"
    api = "api"
    alert = "alert"
    webhook = "webhook"
    pagerduty = "pagerduty"
    opsgenie = "opsgenie"


class Audience(StrEnum):
    internal = "internal"
    customer = "customer"
    stakeholder = "stakeholder"
    executive = "executive"
    status_page = "status_page"  # the public status page (seeds 000, 002, 003)


class NotifyStyle(StrEnum):
    """How a priority reaches people: page someone, post in a channel, or queue a ticket."""

    page = "page"
    post = "post"
    queue = "queue"


# --------------------------------------------------------------------------- calendars

_HOURS_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeRange(Model):
    """A daily working window in local time; ``end`` may be ``24:00``."""

    start: time
    end: time
    until_midnight: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = _HOURS_RANGE.match(value.strip())
            if not m:
                raise ValueError(f"'{value}' is not a time range: write it as 'HH:MM-HH:MM'")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
                raise ValueError(f"'{value}' has an impossible clock time")
            midnight = h2 == 24
            return {
                "start": time(h1, m1),
                "end": time(0, 0) if midnight else time(h2, m2),
                "until_midnight": midnight,
            }
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if not self.until_midnight and self.end <= self.start:
            raise ValueError(
                f"working hours end ({self.end:%H:%M}) must be after they start "
                f"({self.start:%H:%M}); split an overnight shift into two days"
            )
        return self


class HolidaySource(Model):
    """Public holidays from the ``holidays`` package, by country (and subdivision)."""

    country: str = Field(min_length=2, max_length=3, description="ISO 3166 country code")
    subdivision: str | None = None


class Calendar(Model):
    """When SLA clocks run: a time zone, weekly hours and holidays; or ``24/7``."""

    id: Id
    name: str | None = None
    timezone: str = Field(description="IANA time zone, e.g. America/New_York")
    always: bool = Field(False, description="24/7: clocks always run")
    weekly: dict[str, list[TimeRange]] = Field(
        default_factory=dict, description="Working hours per weekday (mon..sun)"
    )
    holidays: list[HolidaySource] = Field(default_factory=list)
    closed: list[date] = Field(default_factory=list, description="Extra closed days")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict) and "hours" in value:
            value = dict(value)
            hours = value.pop("hours")
            if isinstance(hours, str) and hours.strip().lower() in {"24/7", "always"}:
                value["always"] = True
            elif isinstance(hours, str):
                # "mon-fri 09:00-18:00" or "mon-sun 06:00-22:00"
                m = re.match(r"^\s*(\w{3})\s*-\s*(\w{3})\s+(.+)$", hours)
                if not m:
                    raise ValueError(
                        f"hours '{hours}' not understood: write '24/7' or "
                        "'mon-fri 09:00-18:00', or give 'weekly'"
                    )
                first, last, span = m.group(1).lower(), m.group(2).lower(), m.group(3)
                if first not in WEEKDAYS or last not in WEEKDAYS:
                    raise ValueError(f"hours '{hours}': days are mon, tue, wed, thu, fri, sat, sun")
                i, j = WEEKDAYS.index(first), WEEKDAYS.index(last)
                days = WEEKDAYS[i : j + 1] if i <= j else WEEKDAYS[i:] + WEEKDAYS[: j + 1]
                value["weekly"] = {d: [span] for d in days}
            else:
                raise ValueError("hours must be text such as '24/7' or 'mon-fri 09:00-18:00'")
        if isinstance(value, dict) and isinstance(value.get("holidays"), str):
            value = dict(value)
            value["holidays"] = [{"country": value["holidays"]}]
        return value

    @field_validator("weekly")
    @classmethod
    def _weekday_keys(cls, weekly: dict[str, list[TimeRange]]) -> dict[str, list[TimeRange]]:
        for key in weekly:
            if key not in WEEKDAYS:
                raise ValueError(f"'{key}' is not a weekday: use mon, tue, wed, thu, fri, sat, sun")
        return weekly

    @model_validator(mode="after")
    def _has_hours(self) -> Calendar:
        if not self.always and not any(self.weekly.values()):
            raise ValueError("a calendar needs working hours: 'hours: 24/7' or 'weekly'")
        return self


# --------------------------------------------------------------------------- people & teams


class Contacts(Model):
    """How to reach a person or team on each channel."""

    email: str | None = None
    chat: str | None = Field(None, description="Chat channel or handle, e.g. #incidents")
    phone: str | None = None
    sms: str | None = None
    webhook: str | None = None
    pagerduty: str | None = Field(None, description="PagerDuty service or routing key name")
    opsgenie: str | None = None
    mention: str | None = Field(None, description="Group handle to tag, e.g. @engineering-oncall")
    note: str | None = None


class Role(Model):
    """A named role, e.g. Tech Lead, Eng Director, CFO; held by people."""

    id: Id
    name: str | None = None
    description: str | None = None
    schedule: Id | None = Field(
        None, description="On-call schedule for this role, reached when a path step names it"
    )


class Person(Model):
    id: Id
    name: str | None = None
    roles: list[Id] = Field(default_factory=list, description="Role ids this person holds")
    contacts: Contacts = Field(default_factory=Contacts)
    timezone: str | None = None


class Member(Model):
    """A person's place in a team: ``member`` or ``lead``."""

    person: Id
    role: Literal["member", "lead"] = "member"

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"person": value} if isinstance(value, str) else value


class Team(Model):
    id: Id
    name: str | None = None
    level: Id | None = Field(None, description="The level (tier) this team works at")
    calendar: Id | None = Field(None, description="Working hours; SLA clocks run on it")
    members: list[Member] = Field(default_factory=list)
    contacts: Contacts = Field(default_factory=Contacts)
    schedule: Id | None = Field(None, description="On-call schedule paged for this team")
    manager: Id | None = Field(None, description="Person or role notified as this team's manager")
    description: str | None = None
    examples: list[str] = Field(
        default_factory=list,
        description="Tickets this team takes, in a customer's words (routing by similarity)",
    )

    def leads(self) -> list[str]:
        return [m.person for m in self.members if m.role == "lead"]


class Level(Model):
    """An ordered rung of the ladder (L0..L5, Tier 1..4). Order in the file is the rank."""

    id: Id
    name: str | None = None
    description: str | None = None
    response: Duration | None = Field(None, description="Response target at this level")
    response_by_channel: dict[Channel, Duration] = Field(default_factory=dict)
    team: Id | None = Field(None, description="Default team working this level")
    calendar: Id | None = None
    resolve_within: Duration | None = Field(
        None,
        description="Time box: not resolved at this level within this long (business time) "
        "→ escalate to the next rung (seed 003: 'can't resolve in 30 minutes')",
    )
    response_direct: Duration | None = Field(
        None,
        description="Response target of this level when an escalation starts here (the "
        "customer came to it directly), where 'response' is the target once escalated "
        "to it (seed 002 Tier 2: '30 minutes (escalated), 4 hours (direct)')",
    )

    @field_validator("resolve_within", "response_direct")
    @classmethod
    def _positive(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError(f"{info.field_name} must be longer than zero")
        return value


# --------------------------------------------------------------------------- schedules


class Rotation(Model):
    """One layer of an on-call schedule: people take turns."""

    kind: Literal["daily", "weekly", "custom"] = "weekly"
    every: Duration | None = Field(None, description="Shift length for 'custom' rotations")
    start: str = Field(description="First hand-off, local ISO date-time, e.g. 2026-01-05T09:00")
    handoff: time | None = Field(None, description="Local hand-off time (defaults to start's)")
    people: list[Id] = Field(min_length=1)

    @model_validator(mode="after")
    def _custom_has_length(self) -> Rotation:
        if self.kind == "custom" and self.every is None:
            raise ValueError("a 'custom' rotation needs 'every' (the shift length)")
        return self


class Schedule(Model):
    """An on-call schedule: rotations in a time zone; who is on call at time t."""

    id: Id
    name: str | None = None
    timezone: str
    layers: list[Rotation] = Field(min_length=1)


# --------------------------------------------------------------------------- priorities


class Target(Model):
    """A time target, optionally with a hard maximum (seed 002: target and maximum)."""

    target: Duration
    maximum: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return {"target": value}
        return value

    @model_validator(mode="after")
    def _possible(self) -> Target:
        if self.maximum is not None and self.maximum < self.target:
            raise ValueError(
                f"impossible target: maximum ({format_duration(self.maximum)}) is below the "
                f"target ({format_duration(self.target)})"
            )
        return self

    def limit(self) -> timedelta:
        """The breach point: the maximum when there is one, else the target."""
        return self.maximum if self.maximum is not None else self.target


class PostMortem(Model):
    required: bool = True
    due: Duration | None = Field(None, description="Due this long after resolution, e.g. 48h")
    template: Id | None = None


class Targets(Model):
    """SLA targets: used by priorities and overridden per team or category."""

    response: Target | None = None
    first_response: dict[Channel, Target] = Field(
        default_factory=dict, description="First-response target per channel"
    )
    acknowledgement: Target | None = None
    investigation: Target | None = None
    resolution: Target | None = None
    updates: dict[str, Duration] = Field(
        default_factory=dict,
        description="Update cadence per audience, e.g. internal: 15m, external: 30m",
    )


class Priority(Targets):
    """A priority / severity / urgency. Order in the file is the rank, most urgent first."""

    id: Id
    name: str | None = None
    aliases: list[str] = Field(default_factory=list, description="Other names, e.g. Critical")
    description: str | None = None
    examples: list[str] = Field(default_factory=list)
    match: Match | None = Field(None, description="Text that implies this priority")
    notify: NotifyStyle = NotifyStyle.queue
    ladder: Id | None = Field(None, description="Escalation ladder started at this priority")
    calendar: Id | None = Field(None, description="Calendar for clocks (overrides the team's)")
    postmortem: PostMortem | None = None
    color: str | None = None


class SlaRow(Targets):
    """Targets for one (team, priority) pair, e.g. seed 004's per-team SLA tables."""

    team: Id
    priority: Id


class BreachAction(StrEnum):
    escalate = "escalate"  # along the category's path / next level
    notify_manager = "notify_manager"
    raise_priority = "raise_priority"


class SlaPolicy(Model):
    """What happens as a clock nears and passes its target."""

    warn_at: float = Field(0.8, gt=0, lt=1, description="Warn at this fraction of the target")
    on_breach: list[BreachAction] = Field(default_factory=lambda: [BreachAction.escalate])
    pause_when_waiting_on_customer: bool = True
    rows: list[SlaRow] = Field(default_factory=list)


# --------------------------------------------------------------------------- conditions


class Match(Model):
    """Text conditions: any phrase (case-insensitive, word-bounded, in any word form) or
    any regex pattern; phrases count only in the sense meant (``exclude``, ``require``)
    and not where the text negates them ("not urgent")."""

    phrases: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(
        default_factory=list,
        description="Contexts in which a phrase does not count, e.g. 'tennis court'",
    )
    require: list[str] = Field(
        default_factory=list,
        description="Words of which at least one must also be present for a phrase to count",
    )
    word_forms: bool = Field(
        True, description="Match other forms of the phrase's words (punish → punishment)"
    )
    negatable: bool = Field(
        True, description="A phrase the text negates ('not urgent', 'no hurry') does not count"
    )

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"pattern {p!r} is not a valid regular expression: {exc}") from exc
        return patterns


class Range(Model):
    """A numeric condition: ``over`` / ``at_least`` / ``below`` / ``at_most``."""

    over: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"at_least": value}
        return value

    def holds(self, x: float | None) -> bool:
        if x is None:
            return False
        return (
            (self.over is None or x > self.over)
            and (self.at_least is None or x >= self.at_least)
            and (self.below is None or x < self.below)
            and (self.at_most is None or x <= self.at_most)
        )

    def describe(self) -> str:
        parts = []
        for word, v in (
            ("over", self.over),
            ("at least", self.at_least),
            ("below", self.below),
            ("at most", self.at_most),
        ):
            if v is not None:
                parts.append(f"{word} {v:g}")
        return " and ".join(parts) or "any value"


class Condition(Model):
    """What must hold of an escalation; every key given must hold (AND)."""

    text: Match | None = Field(None, description="Words in the subject or description")
    category: list[Id] = Field(default_factory=list)
    priority: list[Id] = Field(default_factory=list)
    channel: list[Channel] = Field(default_factory=list)
    source: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="Any of these tags")
    customer_tier: list[str] = Field(default_factory=list)
    monthly_value: Range | None = None
    amount: Range | None = None
    users_affected: Range | None = None
    revenue_per_hour: Range | None = None
    sentiment: Range | None = Field(None, description="VADER compound score, -1..1")
    dissatisfied: bool | None = None
    vip: bool | None = Field(None, description="Customer is VIP (routing.vip_* settings)")
    legal_language: bool | None = None
    threatening_language: bool | None = None
    fields: dict[str, str | bool | float | list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("an empty condition always holds: give at least one key")
        return self


# --------------------------------------------------------------------------- categories


class PathStep(Model):
    """One rung of a category's escalation path: a team, or a role within a team."""

    team: Id | None = None
    role: Id | None = Field(None, description="A role id, or 'lead' for the team's lead")
    level: Id | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"team": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _names_something(self) -> PathStep:
        if self.team is None and self.role is None and self.level is None:
            raise ValueError("a path step names a team, a role or a level")
        return self

    def label(self) -> str:
        if self.team and self.role:
            return f"{self.team}:{self.role}"
        return self.team or self.role or self.level or "?"


class Category(Model):
    """An issue type: initial owner, escalation path, SLA, required info and handling."""

    id: Id
    name: str | None = None
    group: str | None = Field(None, description="Heading it sits under, e.g. Billing Issues")
    owner: Id | None = Field(None, description="Initial owner team (or the level's team)")
    also: list[Id] = Field(
        default_factory=list,
        description="Teams engaged together with the owner (seed 004: Engineering + Security)",
    )
    level: Id | None = None
    max_level: Id | None = Field(None, description="Highest default level, e.g. L3-L4")
    auto_escalate_up_to: Id | None = Field(
        None,
        description=(
            "Highest level an SLA breach moves it to by itself; a breach there alerts the "
            "team's manager instead (seed 000: Timeout → Auto Escalate → Timeout → "
            "Management Alert). People may still escalate it further"
        ),
    )
    path: list[PathStep] = Field(default_factory=list, description="Escalation path in order")
    priority: Id | None = Field(None, description="Default priority")
    sla: Targets | None = None
    required: list[str] = Field(default_factory=list, description="Required information")
    handling: list[Id] = Field(default_factory=list)
    authority: Id | None = Field(
        None, description="Authority action whose amount bands say who decides (e.g. disputes)"
    )
    match: Match | None = Field(None, description="Text that suggests this category")
    examples: list[str] = Field(
        default_factory=list,
        description="Tickets of this category, in a customer's words (routing by similarity)",
    )
    description: str | None = None
    confidential: bool = Field(
        False,
        description="Seen only by the teams handling it and the roles or teams in visible_to",
    )
    visible_to: list[Id] = Field(
        default_factory=list,
        description="Roles or teams that may see its escalations (implies confidential)",
    )


# --------------------------------------------------------------------------- rules


class Outcome(Model):
    """What a routing rule or trigger sets."""

    category: Id | None = None
    team: Id | None = None
    level: Id | None = None
    min_level: Id | None = Field(None, description="Raise the level to at least this")
    priority: Id | None = None
    min_priority: Id | None = Field(None, description="Raise the priority to at least this")
    handling: list[Id] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    notify: list[Id] = Field(default_factory=list, description="Roles or people to inform")


class RoutingRule(Model):
    id: Id
    description: str | None = None
    when: Condition
    then: Outcome
    stop: bool = Field(False, description="Later rules do not run after this one fires")


class TriageModel(Model):
    """A learned classifier that decides a field where no rule does (see ``escalade triage``)."""

    field: Literal["category", "team", "priority"]
    model: str = Field(description="Path to a model file made by 'escalade triage train'")
    min_confidence: float = Field(0.6, ge=0, le=1)
    label_map: dict[str, Id] = Field(
        default_factory=dict, description="Model label → policy id, where they differ"
    )
    min_backtest_accuracy: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Use the model only if it reaches this accuracy on the 'backtest' tickets",
    )
    backtest: str | None = Field(
        None,
        description="Labelled tickets (JSON Lines or CSV, relative to the policy file) the "
        "model is measured on, e.g. made by 'escalade triage export --from-db --last 4w'",
    )

    @model_validator(mode="after")
    def _backtest_named(self) -> TriageModel:
        if self.min_backtest_accuracy is not None and not self.backtest:
            raise ValueError(
                "min_backtest_accuracy needs 'backtest': the labelled tickets to measure on"
            )
        return self


class Similarity(Model):
    """Routing from the policy's own words: categories' and teams' examples, descriptions,
    names and phrases compared with the ticket (see ``escalade.routing.similarity``)."""

    enabled: bool = Field(True, description="Route by similarity where no rule or phrase decides")
    min_similarity: float = Field(
        0.2, gt=0, le=1, description="Cosine similarity (0..1) a ticket needs to be routed"
    )
    margin: float = Field(
        0.05,
        ge=0,
        le=1,
        description="How far the best key must lead the runner-up of another team",
    )
    overrule_phrase: float | None = Field(
        0.3,
        gt=0,
        le=1,
        description="A category chosen by one phrase alone gives way to another team's "
        "category at least this similar (none: phrases always decide first)",
    )
    priorities: bool = Field(
        True,
        description="Also set the priority from the priorities' examples and descriptions "
        "where neither the category nor a phrase gives one",
    )
    use_phrases: bool = Field(True, description="Count match phrases among the references")
    use_names: bool = Field(True, description="Count category and team names too")
    thesaurus: bool = Field(
        True, description="Use Escalade's support-desk thesaurus (words customers use alike)"
    )
    synonyms: list[list[str]] = Field(
        default_factory=list,
        description="The policy's own groups of words or phrases that mean the same",
    )


class Routing(Model):
    rules: list[RoutingRule] = Field(default_factory=list)
    default_category: Id | None = None
    default_priority: Id | None = None
    triage_queue: Id | None = Field(None, description="Team that takes what nothing decides")
    dissatisfaction_below: float = Field(
        -0.5, ge=-1, le=1, description="VADER compound score under which a customer is unhappy"
    )
    vip_monthly_value: float | None = Field(
        None, description="Monthly value over which a customer is VIP (seed 004: 100)"
    )
    vip_tiers: list[str] = Field(default_factory=list)
    triage: list[TriageModel] = Field(default_factory=list)
    similarity: Similarity = Field(default_factory=Similarity)


# --------------------------------------------------------------------------- ladders


class Recipient(Model):
    """Who a ladder step or notification reaches: exactly one of the keys."""

    person: Id | None = None
    role: Id | None = None
    team: Id | None = None
    schedule: Id | None = None
    queue: str | None = None
    owner: bool | None = Field(None, description="The escalation's current owning team")
    customer: bool | None = None
    manager: bool | None = Field(None, description="The owning team's manager")
    everyone: bool | None = Field(
        None, description="All hands: every person of every team (seeds 000, 002)"
    )
    status_page: bool | None = Field(
        None, description="The policy's status page (top-level 'status_page')"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Recipient:
        given = [k for k, v in self if v not in (None, False)]
        if len(given) != 1:
            raise ValueError(
                "a target names exactly one of person, role, team, schedule, queue, owner, "
                "customer, manager, everyone, status_page"
            )
        return self

    def label(self) -> str:
        for k, v in self:
            if v not in (None, False):
                return k if v is True else f"{k}:{v}"
        return "?"


class StopWhen(StrEnum):
    acknowledged = "acknowledged"
    responded = "responded"
    resolved = "resolved"


class LadderStep(Model):
    after: Duration = Field(description="Time since the escalation started (or the ladder)")
    notify: list[Recipient] = Field(default_factory=list)
    channel: Channel | None = None
    template: Id | None = None
    level: Id | None = Field(None, description="Raise the escalation to this level")
    unless: list[StopWhen] = Field(
        default_factory=lambda: [StopWhen.acknowledged, StopWhen.resolved],
        description="The step is skipped once any of these has happened",
    )
    note: str | None = None


class Ladder(Model):
    """Timed steps for a priority, e.g. SEV-1: 15 min Tech Lead + Manager … 4 h CEO."""

    id: Id
    name: str | None = None
    steps: list[LadderStep] = Field(min_length=1)
    repeat: int = Field(0, ge=0, description="Run the whole ladder again this many times")

    @model_validator(mode="after")
    def _ordered(self) -> Ladder:
        for a, b in zip(self.steps, self.steps[1:], strict=False):
            if b.after < a.after:
                raise ValueError("ladder steps must be in order of 'after'")
        return self


class FollowUp(Model):
    """A recurring reminder while an escalation is open (seed 003: status every 4 h)."""

    id: Id
    what: str
    every: Duration
    to: Recipient
    priorities: list[Id] = Field(default_factory=list, description="Only at these priorities")
    tags: list[str] = Field(
        default_factory=list,
        description="Only for escalations routed with one of these tags (seed 004: VIP)",
    )
    audience: Audience = Audience.internal
    if_idle: bool = Field(
        False,
        description="Only when nobody acted for 'every' (seed 001: 'follow up if no progress "
        "in 48 hours'); the count restarts with each person's action",
    )


# --------------------------------------------------------------------------- triggers


class TriggerKind(StrEnum):
    automatic = "automatic"  # SLA breach, alert, classification, dissatisfaction
    manual = "manual"  # agent, customer request, supervisor request
    threshold = "threshold"  # related issues in a window; actor activity over a limit
    management = "management"  # legal threat, churn threat, compensation, SLA breach


class Threshold(Model):
    """Counting rule: ``more_than`` per ``window``; optionally on ``days`` of ``within``."""

    activity: str | None = Field(
        None, description="Activity action counted, e.g. household.created"
    )
    related: Literal["category", "customer", "alert_key", "text", "customer_category"] | None = (
        Field(
            None,
            description=(
                "Count related escalations sharing this (customer_category: the same "
                "customer about the same category, i.e. the same issue)"
            ),
        )
    )
    more_than: int = Field(ge=0)
    window: Duration = Field(description="Counting window, e.g. 1d")
    per: Literal["actor", "customer", "category", "all"] = "actor"
    days: int | None = Field(None, ge=1, description="On at least this many days …")
    within: Duration | None = Field(None, description="… within this span, e.g. 7d")

    @model_validator(mode="after")
    def _one_subject(self) -> Threshold:
        if (self.activity is None) == (self.related is None):
            raise ValueError("a threshold counts either 'activity' or 'related' escalations")
        if self.days is not None and self.within is None:
            raise ValueError("'days' needs 'within' (the span the days fall in)")
        return self


class Trigger(Model):
    id: Id
    kind: TriggerKind
    description: str | None = None
    on: (
        Literal[
            "sla_breach",
            "alert",
            "classification",
            "dissatisfaction",
            "agent",
            "customer_request",
            "supervisor_request",
            "create",
            "customer_reply",
        ]
        | None
    ) = None
    when: Condition | None = None
    threshold: Threshold | None = None
    then: Outcome = Field(default_factory=Outcome)

    @model_validator(mode="after")
    def _shape(self) -> Trigger:
        if self.kind is TriggerKind.threshold and self.threshold is None:
            raise ValueError("a threshold trigger needs 'threshold'")
        if self.kind is not TriggerKind.threshold and self.threshold is not None:
            raise ValueError("only kind 'threshold' takes 'threshold'")
        if self.kind is TriggerKind.management and self.when is None and self.on is None:
            raise ValueError("a management trigger needs 'when' or 'on'")
        return self


# --------------------------------------------------------------------------- authority


class Band(Model):
    """An amount band: lower bound ``from`` (inclusive) or ``over`` (exclusive); upper bound
    ``below`` (exclusive) or ``through`` (inclusive). Open ends are unbounded."""

    from_: float | None = Field(None, alias="from")
    over: float | None = None
    below: float | None = None
    through: float | None = None
    authority: list[Id] = Field(min_length=1, description="Roles, teams or levels that may act")
    timeline: str | None = None
    resolution: Target | None = Field(
        None,
        description=(
            "The band's timeline as a clock: the escalation's resolution target (and "
            "maximum) when its amount falls in this band, e.g. {target: 24h, maximum: 48h}"
        ),
    )
    lead_only: bool = False

    @model_validator(mode="before")
    @classmethod
    def _authority_list(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("authority"), str):
            return {**value, "authority": [value["authority"]]}
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Band:
        if self.from_ is not None and self.over is not None:
            raise ValueError("give 'from' or 'over', not both")
        if self.below is not None and self.through is not None:
            raise ValueError("give 'below' or 'through', not both")
        lo, hi = self.lower(), self.upper()
        if lo is not None and hi is not None and hi < lo:
            raise ValueError(f"band's upper bound {hi:g} is below its lower bound {lo:g}")
        return self

    def lower(self) -> float | None:
        return self.from_ if self.from_ is not None else self.over

    def upper(self) -> float | None:
        return self.below if self.below is not None else self.through

    def holds(self, x: float) -> bool:
        return (
            (self.from_ is None or x >= self.from_)
            and (self.over is None or x > self.over)
            and (self.below is None or x < self.below)
            and (self.through is None or x <= self.through)
        )

    def describe(self) -> str:
        lo = (
            f"from {self.from_:g}"
            if self.from_ is not None
            else f"over {self.over:g}"
            if self.over is not None
            else ""
        )
        hi = (
            f"below {self.below:g}"
            if self.below is not None
            else f"through {self.through:g}"
            if self.through is not None
            else ""
        )
        return " ".join(p for p in (lo, hi) if p) or "any amount"


class Grant(Model):
    """An authority-matrix cell: who may, who may only as lead."""

    allow: list[Id] = Field(default_factory=list, description="Teams/roles/levels that may")
    lead_only: list[Id] = Field(default_factory=list, description="Only that team's lead may")


class AuthorityAction(Grant):
    id: Id
    name: str | None = None
    bands: list[Band] = Field(default_factory=list, description="Amount bands, in order")
    currency: str | None = None


class Authority(Model):
    """The authority matrix: actions × roles, with lead-only cells and amount bands."""

    columns: list[Id] = Field(default_factory=list, description="Teams/roles the matrix lists")
    actions: list[AuthorityAction] = Field(default_factory=list)


# --------------------------------------------------------------------------- editing rights

# Escalade's own roles for people (escalade.auth.scopes.Role); editing rights may name them
# besides the policy's roles.
ESCALADE_ROLES = ("admin", "lead", "responder", "viewer")


class Editing(Model):
    """Who may change what, besides Escalade admins (always) and, for a team's schedules
    and overrides, the team's leads (always). Roles are policy roles or Escalade roles."""

    policies: list[Id] = Field(
        default_factory=list, description="Roles that may apply a new policy version"
    )
    schedules: list[Id] = Field(default_factory=list, description="Roles that may edit schedules")
    overrides: list[Id] = Field(
        default_factory=list, description="Roles that may add on-call overrides"
    )


# --------------------------------------------------------------------------- handling


class HandlingKind(StrEnum):
    no_customer_reply = "no_customer_reply"
    no_customer_alert = "no_customer_alert"
    do_not_engage = "do_not_engage"
    never_in_chat = "never_in_chat"
    confidential = "confidential"
    approval_before_communication = "approval_before_communication"
    single_team = "single_team"
    note = "note"


class HandlingRule(Model):
    id: Id
    kind: HandlingKind = HandlingKind.note
    description: str | None = None
    never: list[str] = Field(default_factory=list, description="Things never to do")
    visible_to: list[Id] = Field(default_factory=list, description="Roles that may see it")
    forbid_channels: list[Channel] = Field(default_factory=list)
    approver: Id | None = Field(None, description="Role that approves communication")
    forward_to: str | None = None
    ticket_note: str | None = None


# --------------------------------------------------------------------------- messages


class Template(Model):
    id: Id
    channel: Channel | None = None
    audience: Audience = Audience.internal
    subject: str | None = None
    body: str = Field(description="Jinja2 text; the escalation is in scope")
    priorities: list[Id] = Field(default_factory=list, description="Use at these priorities")
    default: bool = Field(
        False,
        description="Used for every message of its audience (and channel, when given) that "
        "names no template, instead of Escalade's built-in one",
    )


class NotificationRule(Model):
    """Who hears of a new escalation at a priority (seed 004: P0 tag @eng-oncall in #incidents)."""

    id: Id
    when: Condition | None = None
    priorities: list[Id] = Field(default_factory=list)
    teams: list[Id] = Field(default_factory=list)
    to: Recipient
    channel: Channel
    address: str | None = Field(
        None,
        description="Channel address, e.g. #incidents; '{ref}' stands for the escalation's "
        "ref, so '#war-room-{ref}' opens one incident channel per escalation",
    )
    mention: str | None = None
    template: Id | None = None
    audience: Audience = Audience.internal
    on: Literal["created", "resolved"] = Field(
        "created", description="When it is sent: as the escalation is created, or resolved"
    )


class StatusPage(Model):
    """Where status-page updates go (seeds 000, 002, 003: "update status page"): a message
    to ``address`` on ``channel``, at once by a notification rule or ladder step to
    ``{status_page: true}``, and at each ``updates: {status_page: …}`` cadence."""

    channel: Channel = Channel.webhook
    address: str = Field(min_length=1, description="Status page endpoint, page id or address")
    template: Id | None = Field(None, description="Template of the update")


class MetricTarget(Model):
    """A metric the organisation tracks, with its target (``below`` / ``above``) when it
    has one; a metric without either is tracked only (seed 003: root causes)."""

    id: Id
    name: str | None = None
    below: float | None = None
    above: float | None = None
    unit: Literal["ratio", "percent", "seconds", "minutes", "hours", "score", "count"] = "ratio"
    review: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> MetricTarget:
        if self.below is not None and self.above is not None and self.above >= self.below:
            raise ValueError(
                f"impossible target: above {self.above:g} and below {self.below:g} leave no room"
            )
        return self


def _field_path(value: str) -> str:
    """A place in a JSON body: a JSON pointer (``/ticket/customer/email``, RFC 6901) or a
    dotted path (``ticket.customer.email``); a number picks a list item in either."""
    if value.startswith("/"):
        for part in value[1:].split("/"):
            if re.search(r"~(?![01])", part):
                raise ValueError(
                    f"'{value}' is not a JSON pointer: '~' must be followed by 0 or 1 "
                    "('~0' is '~', '~1' is '/')"
                )
        return value
    if not value.strip() or any(not part for part in value.split(".")):
        raise ValueError(
            f"'{value}' is not a path: give a JSON pointer such as /ticket/title or a "
            "dotted path such as ticket.title (no empty parts)"
        )
    return value


FieldPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        description="A JSON pointer (/ticket/title) or a dotted path (ticket.title)",
    ),
    AfterValidator(_field_path),
]


class ResolveWhen(Model):
    """When a mapped webhook resolves its escalation: the value at ``path`` is one of
    ``values`` (compared as text, case-insensitively)."""

    path: FieldPath
    values: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=100
    )


class WebhookMapping(Model):
    """How a generic JSON webhook's body becomes an escalation
    (``POST /v1/integrations/webhook/{name}``): where each field is in the body."""

    subject: FieldPath
    dedup_key: FieldPath = Field(
        description="The body's own id of the thing (a ticket number): one escalation per key"
    )
    description: FieldPath | None = None
    customer_email: FieldPath | None = None
    priority: FieldPath | None = Field(
        None, description="A priority id, name or alias, or a key of `priorities`"
    )
    priorities: dict[str, Id] = Field(
        default_factory=dict, description="The body's priority value → a policy priority"
    )
    category: FieldPath | None = Field(None, description="A category id, or a key of `categories`")
    categories: dict[str, Id] = Field(
        default_factory=dict, description="The body's category value → a policy category"
    )
    resolve_when: ResolveWhen | None = None
    channel: Channel = Field(Channel.webhook, description="The escalations' channel")

    @model_validator(mode="after")
    def _maps_need_paths(self) -> WebhookMapping:
        if self.priorities and self.priority is None:
            raise ValueError("'priorities' maps values but 'priority' names no path to read")
        if self.categories and self.category is None:
            raise ValueError("'categories' maps values but 'category' names no path to read")
        return self


class AlertIntake(Model):
    """How monitoring alerts (Alertmanager, Prometheus, PagerDuty events, mapped webhooks)
    become escalations."""

    category: Id | None = Field(None, description="Category of escalations alerts create")
    severity: dict[str, Id] = Field(
        default_factory=dict, description="Alert severity → priority, e.g. critical: SEV-1"
    )
    default_priority: Id | None = None
    escalation_per: Literal["fingerprint", "group"] = Field(
        "fingerprint",
        description=(
            "Alertmanager webhooks: one escalation per alert (its label fingerprint) or one "
            "per Alertmanager group (its groupKey)"
        ),
    )
    webhooks: dict[Id, WebhookMapping] = Field(
        default_factory=dict,
        description="Generic JSON webhooks by name: where each escalation field is in the body",
    )


# --------------------------------------------------------------------------- channels

_SECRET_QUERY = re.compile(
    r"[?&](token|key|api_?key|secret|sig|signature|password|pass|code|auth|access_token)=",
    re.IGNORECASE,
)
_SECRET_URLS = ("hooks.slack.com/services/", "webhook.office.com/", "logic.azure.com")
_SECRET_HINT = (
    "secrets are never written in the policy: give {env: VARIABLE} or {file: /path/to/file}"
)


class SecretRef(Model):
    """Where a secret is read from at start-up: an environment variable or a file (its
    content, surrounding white space removed). Never the value itself."""

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, data: Any) -> Any:
        if isinstance(data, str | int | float):
            raise ValueError(f"a secret written inline; {_SECRET_HINT}")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"


def _plain_url(value: str | None) -> str | None:
    """An endpoint written in the policy must hold no credentials."""
    if value is None:
        return value
    if re.match(r"^[a-z][a-z0-9+.\-]*://[^/@\s]*@", value, re.IGNORECASE):
        raise ValueError(f"the URL holds a user name or password; {_SECRET_HINT}")
    if _SECRET_QUERY.search(value) or any(s in value for s in _SECRET_URLS):
        raise ValueError(f"the URL looks like it holds a secret; {_SECRET_HINT}")
    return value


PlainUrl = Annotated[str, BeforeValidator(_plain_url)]


class ChannelKind(StrEnum):
    """The kinds of outbound channel Escalade delivers through (``escalade.channels``)."""

    email = "email"
    slack = "slack"
    teams = "teams"
    webhook = "webhook"
    pagerduty = "pagerduty"
    opsgenie = "opsgenie"
    sms = "sms"
    voice = "voice"
    apprise = "apprise"


class ChannelWhen(Model):
    """Which messages an instance takes; every list given must match (empty: any)."""

    teams: list[Id] = Field(default_factory=list, description="The escalation's owning team")
    people: list[Id] = Field(default_factory=list, description="The person the message is for")
    priorities: list[Id] = Field(default_factory=list)
    audiences: list[Audience] = Field(default_factory=list)


class SmtpSecurity(StrEnum):
    starttls = "starttls"
    ssl = "ssl"  # SMTPS: TLS from the first byte (port 465)
    none = "none"  # plain SMTP (a local relay)


_KIND_FIELDS: dict[str, set[str]] = {
    "email": {"host", "port", "security", "username", "password", "sender"},
    "slack": {"webhook", "interactive"},
    "teams": {"webhook"},
    "webhook": {"url", "signing_secret"},
    "pagerduty": {"url", "routing_key", "severity"},
    "opsgenie": {"url", "api_key"},
    "sms": {"url", "account", "token", "sender"},
    "voice": {"url", "account", "token", "sender"},
    "apprise": {"target"},
}
_KIND_REQUIRED: dict[str, set[str]] = {
    "email": {"host", "sender"},
    "slack": {"webhook"},
    "teams": {"webhook"},
    "webhook": {"url", "signing_secret"},
    "pagerduty": {"routing_key"},
    "opsgenie": {"api_key"},
    "sms": {"url", "account", "token", "sender"},
    "voice": {"url", "account", "token", "sender"},
    "apprise": {"target"},
}
_COMMON_FIELDS = {"id", "type", "carries", "when", "timeout", "description"}


class ChannelConfig(Model):
    """One configured outbound channel instance (``channels:``). ``carries`` names the
    message channels it delivers (a ladder step's ``channel: pagerduty``, a team's chat
    contact …); ``when`` narrows it to teams, people, priorities or audiences. For each
    message the first instance in the list that carries its channel and matches wins."""

    id: Id
    type: ChannelKind
    carries: list[Channel] = Field(min_length=1, description="Message channels it delivers")
    when: ChannelWhen = Field(default_factory=ChannelWhen)
    description: str | None = None
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds to wait for the provider")
    # email (SMTP)
    host: str | None = Field(None, description="SMTP server")
    port: int | None = Field(None, ge=1, le=65535, description="Default 587, or 465 with ssl")
    security: SmtpSecurity = SmtpSecurity.starttls
    username: str | None = None
    password: SecretRef | None = None
    sender: str | None = Field(None, description="From address (email) or number (SMS/voice)")
    # HTTP endpoints (base URLs for pagerduty, opsgenie, sms and voice)
    url: PlainUrl | None = Field(None, description="Endpoint or base URL (no credentials)")
    webhook: SecretRef | None = Field(None, description="Slack or Teams webhook URL (secret)")
    interactive: bool = Field(
        False,
        description="Slack: buttons post to Escalade's interactivity endpoint "
        "(/v1/integrations/slack/actions) instead of opening the confirm page",
    )
    signing_secret: SecretRef | None = Field(None, description="HMAC-SHA256 key (webhook)")
    routing_key: SecretRef | None = Field(None, description="PagerDuty integration key")
    severity: Literal["critical", "error", "warning", "info"] | None = Field(
        None, description="PagerDuty severity (default: by priority rank)"
    )
    api_key: SecretRef | None = Field(None, description="Opsgenie API key")
    account: SecretRef | str | None = Field(
        None, description="SMS/voice provider account id (inline or {env: …})"
    )
    token: SecretRef | None = Field(None, description="SMS/voice provider auth token")
    target: SecretRef | None = Field(None, description="Apprise URL (secret: holds tokens)")

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> ChannelConfig:
        kind = self.type.value
        fields = type(self).model_fields
        given = {  # set and not the default (a stored policy carries every default)
            name
            for name in fields
            if name not in _COMMON_FIELDS
            and name in self.model_fields_set
            and getattr(self, name) is not None
            and getattr(self, name) != fields[name].default
        }
        stray = sorted(given - _KIND_FIELDS[kind])
        if stray:
            raise ValueError(
                f"{', '.join(repr(s) for s in stray)} not used by channel type '{kind}' "
                f"(it takes {', '.join(sorted(_KIND_FIELDS[kind]))})"
            )
        missing = sorted(n for n in _KIND_REQUIRED[kind] if getattr(self, n) is None)
        if missing:
            raise ValueError(f"channel type '{kind}' needs {', '.join(repr(m) for m in missing)}")
        return self


# --------------------------------------------------------------------------- the policy


class Policy(Model):
    """An escalation policy: the whole process of one organisation."""

    escalade: Literal[1] = Field(1, description="Policy language version")
    id: Id
    name: str | None = None
    description: str | None = None
    seed: str | None = Field(None, description="The written process this policy encodes")
    currency: str = "USD"
    default_calendar: Id | None = None
    allow_multi_team: bool = Field(
        False, description="May one issue be escalated to several teams at once?"
    )

    calendars: list[Calendar] = Field(default_factory=list)
    levels: list[Level] = Field(default_factory=list)
    roles: list[Role] = Field(default_factory=list)
    people: list[Person] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    priorities: list[Priority] = Field(default_factory=list)
    sla: SlaPolicy = Field(default_factory=SlaPolicy)
    handling: list[HandlingRule] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    routing: Routing = Field(default_factory=Routing)
    ladders: list[Ladder] = Field(default_factory=list)
    followups: list[FollowUp] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    authority: Authority = Field(default_factory=Authority)
    editing: Editing = Field(default_factory=Editing)
    templates: list[Template] = Field(default_factory=list)
    notifications: list[NotificationRule] = Field(default_factory=list)
    metrics: list[MetricTarget] = Field(default_factory=list)
    alerts: AlertIntake = Field(default_factory=AlertIntake)
    status_page: StatusPage | None = Field(
        None, description="The public status page updates are posted to"
    )
    channels: list[ChannelConfig] = Field(
        default_factory=list, description="Outbound channel instances (email, Slack, …)"
    )

    # ---- lookups (the validator guarantees references resolve); indexed once per policy

    @cached_property
    def _index(self) -> dict[str, dict[str, Any]]:
        return {
            "levels": {x.id: x for x in self.levels},
            "teams": {x.id: x for x in self.teams},
            "priorities": {x.id: x for x in self.priorities},
            "categories": {x.id: x for x in self.categories},
            "calendars": {x.id: x for x in self.calendars},
            "ladders": {x.id: x for x in self.ladders},
            "level_rank": {x.id: i for i, x in enumerate(self.levels)},
            "priority_rank": {x.id: i for i, x in enumerate(self.priorities)},
        }

    def _get(self, kind: str, key: str) -> Any:
        try:
            return self._index[kind][key]
        except KeyError:
            raise KeyError(f"no {kind} '{key}' in policy '{self.id}'") from None

    def level_rank(self, level_id: str) -> int:
        try:
            return int(self._index["level_rank"][level_id])
        except KeyError:
            raise ValueError(f"'{level_id}' is not a level of policy '{self.id}'") from None

    def is_level(self, level_id: str | None) -> bool:
        return level_id is not None and level_id in self._index["level_rank"]

    def raises_level(self, current: str | None, target: str | None) -> bool:
        """Whether moving from ``current`` to ``target`` raises the level: ``target`` is a
        level of the policy, above ``current`` (or ``current`` is none of its levels)."""
        if not self.is_level(target):
            return False
        if not self.is_level(current):
            return True
        return self.level_rank(target or "") > self.level_rank(current or "")

    def more_urgent(self, priority: str | None, than: str | None) -> bool:
        """Whether ``priority`` is more urgent than ``than`` (both priorities of the policy)."""
        ranks = self._index["priority_rank"]
        if priority not in ranks or than not in ranks:
            return False
        return bool(ranks[priority] < ranks[than])

    def priority_above(self, priority_id: str | None) -> str | None:
        """The next more urgent priority, or None (already the most urgent, or unknown)."""
        rank = self._index["priority_rank"].get(priority_id or "")
        return self.priorities[rank - 1].id if rank else None

    def priority_rank(self, priority_id: str) -> int:
        """0 is the most urgent."""
        try:
            return int(self._index["priority_rank"][priority_id])
        except KeyError:
            raise ValueError(f"'{priority_id}' is not a priority of policy '{self.id}'") from None

    def get_level(self, level_id: str) -> Level:
        return self._get("levels", level_id)

    def get_team(self, team_id: str) -> Team:
        return self._get("teams", team_id)

    def get_priority(self, priority_id: str) -> Priority:
        return self._get("priorities", priority_id)

    def get_category(self, category_id: str) -> Category:
        return self._get("categories", category_id)

    def get_calendar(self, calendar_id: str) -> Calendar:
        return self._get("calendars", calendar_id)

    def get_ladder(self, ladder_id: str) -> Ladder:
        return self._get("ladders", ladder_id)

    def find_priority(self, name: str) -> Priority | None:
        """A priority by id, name or alias, ignoring case."""
        key = name.strip().lower()
        for p in self.priorities:
            names = [p.id, p.name or "", *p.aliases]
            if key in (n.lower() for n in names):
                return p
        return None

    def find_category(self, name: str) -> Category | None:
        key = name.strip().lower()
        for c in self.categories:
            if key in (c.id.lower(), (c.name or "").lower()):
                return c
        return None


Priority.model_rebuild()
