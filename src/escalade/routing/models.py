"""What routing reads and what it decides.

``EscalationInput`` is the escalation package as it arrives (API, CLI, scenario): the keys of
docs/contracts.md plus the seed 001 package parts (ticket, history, technical context).
``Decision`` is the explained outcome: category, team, level, priority, handling, missing
required information, and the ordered reasons.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from escalade.policy.models import Channel


class Customer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    email: str | None = Field(None, max_length=320)
    name: str | None = Field(None, max_length=200)
    id: str | None = Field(None, max_length=200)
    tier: str | None = Field(
        None, max_length=80, description="Account tier, e.g. free, premium, enterprise"
    )
    monthly_value: float | None = Field(None, ge=0, description="Revenue per month")


class Impact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    users_affected: int | None = Field(None, ge=0)
    revenue_per_hour: float | None = Field(None, ge=0)
    scope: str | None = Field(
        None, max_length=200, description="e.g. single user, segment, platform-wide"
    )


class EscalationInput(BaseModel):
    """One escalation as it comes in: the escalation package."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str = Field("", max_length=2000)
    description: str = Field("", max_length=100_000)
    category: str | None = Field(None, max_length=200)
    priority: str | None = Field(None, max_length=200)
    channel: Channel | None = None
    source: str | None = Field(None, max_length=200)
    tags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    customer: Customer = Field(default_factory=Customer)
    impact: Impact = Field(default_factory=Impact)
    amount: float | None = Field(None, ge=0, description="Money at stake")
    fields: dict[str, Any] = Field(default_factory=dict)
    ticket: dict[str, Any] = Field(default_factory=dict)
    history: dict[str, Any] = Field(default_factory=dict)
    technical_context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("category", "priority", "source")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank; leave it out to let routing decide")
        return value

    @cached_property
    def text(self) -> str:
        """Subject and description: what phrase rules and models read."""
        return f"{self.subject}\n{self.description}".strip()

    def has_field(self, name: str) -> bool:
        """Whether a piece of required information is present anywhere in the package."""
        aliases = {
            "customer_email": ("customer", "email"),
            "email": ("customer", "email"),
            "users_affected": ("impact", "users_affected"),
            "impact": ("impact", "users_affected"),
            "issue_description": ("description",),
            "description": ("description",),
            "subject": ("subject",),
            "urgency": ("priority",),
            "priority": ("priority",),
            "severity": ("priority",),
            "amount": ("amount",),
            "customer_value": ("customer", "monthly_value"),
        }
        if _present(self.fields.get(name)) or _present(self.ticket.get(name)):
            return True
        if _present(self.technical_context.get(name)) or _present(self.history.get(name)):
            return True
        if name == "ticket_id" and _present(self.ticket.get("id")):
            return True
        path = aliases.get(name)
        if path is None:
            return False
        value: Any = self
        for part in path:
            value = getattr(value, part, None)
        return _present(value)


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (str, list, dict)):
        return bool(value.strip() if isinstance(value, str) else value)
    return True


class Signals(BaseModel):
    """What routing read from the package beyond explicit fields."""

    model_config = ConfigDict(frozen=True)

    sentiment: float | None = Field(
        None,
        description="VADER compound score, -1 (angry) .. 1 (happy); read only when the "
        "policy's rules or triggers use it",
    )
    dissatisfied: bool | None = None
    legal_language: bool
    threatening_language: bool
    vip: bool
    legal_phrases: list[str] = Field(default_factory=list)


class TriageGuess(BaseModel):
    """What a learned triage model said about one field."""

    model_config = ConfigDict(frozen=True)

    field: str
    model: str
    label: str
    probability: float
    runner_up: str | None = None
    runner_up_probability: float | None = None
    top_words: list[str] = Field(default_factory=list)
    accepted: bool
    reference: str | None = Field(
        None, description="For the policy's own words: the example or text it was closest to"
    )
    reference_kind: str | None = Field(
        None, description="example, description, name or phrases (the policy's own words)"
    )


class Decision(BaseModel):
    """A routing decision with the reasons that produced it, in order."""

    model_config = ConfigDict(frozen=True)

    category: str | None
    team: str
    level: str | None
    priority: str | None
    handling: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    also: list[str] = Field(default_factory=list, description="Teams engaged with the owner")
    path: list[str] = Field(default_factory=list, description="Escalation path after the owner")
    tags: list[str] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list, description="Roles/people to inform")
    rules: list[str] = Field(default_factory=list, description="Ids of the rules that fired")
    triggers: list[str] = Field(default_factory=list, description="Trigger ids that fired")
    needs_triage: bool = Field(False, description="No confident decision: a person must triage")
    signals: Signals | None = None
    triage: list[TriageGuess] = Field(default_factory=list)
    response_target: str | None = Field(None, description="First-response target, e.g. 1h")
    authority: list[str] = Field(
        default_factory=list, description="Who may decide the amount at stake (authority bands)"
    )
    never: list[str] = Field(
        default_factory=list, description="What the handling rules say must never be done"
    )
    forward_to: list[str] = Field(
        default_factory=list, description="Where the handling rules say it is forwarded"
    )
