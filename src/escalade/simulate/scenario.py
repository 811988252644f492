"""Scenario files for ``escalade simulate`` (docs/contracts.md), parsed and checked at the edge.

Every problem is reported with the file, line and column; unknown event kinds and unknown
refs are errors, never ignored.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from escalade.durations import DurationError, parse_duration
from escalade.errors import EscaladeError
from escalade.policy.loader import (
    Document,
    PolicyFileError,
    Position,
    Problem,
    document_from_text,
    read_regular_file,
)
from escalade.routing.models import EscalationInput


class ScenarioInvalid(EscaladeError):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Create(EscalationInput):
    """An escalation comes in (the keys of docs/contracts.md plus ``ref``)."""

    ref: str = Field(min_length=1)


class Act(_Event):
    ref: str = Field(min_length=1)
    by: str = "system"
    reason: str | None = None
    resolution: str | None = None
    text: str | None = None
    to: str | None = None
    category: str | None = Field(None, min_length=1, description="recategorise: the new one")


class Alert(_Event):
    source: str = "alertmanager"
    key: str = Field(min_length=1, description="Deduplication key")
    status: Literal["firing", "resolved"] = "firing"
    severity: str | None = None
    summary: str = ""
    description: str = ""
    ref: str | None = Field(None, description="Name for the escalation it creates")
    labels: dict[str, str] = Field(default_factory=dict)


class Override(_Event):
    schedule: str
    user: str
    from_: str = Field(alias="from")
    to: str


class Activity(_Event):
    actor: str = Field(min_length=1)
    action: str = Field(min_length=1)
    count: int = Field(1, ge=1)
    ref: str | None = Field(None, description="Name for an escalation a threshold creates")


ACT_KINDS = (
    "acknowledge",
    "investigate",
    "escalate",
    "deescalate",
    "reassign",
    "resolve",
    "reopen",
    "close",
    "comment",
    "customer_reply",
    "waiting_on_customer",
    "recategorise",
)
KINDS = ("create", "alert", "override", "activity", *ACT_KINDS)


class Event(BaseModel):
    """One scenario event at a time offset."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    at: datetime
    kind: str
    body: Create | Act | Alert | Override | Activity
    index: int
    position: Position


SHOWABLE = frozenset({"messages"})
"""What a scenario's ``show:`` may add to the output: ``messages`` adds each sent
message's subject, body and the template it was rendered from."""


class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    file: str
    policy: Path | None
    start: datetime
    until: datetime
    events: list[Event]
    show: frozenset[str] = frozenset()

    @field_validator("start", "until")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("times need an offset, e.g. 2026-03-07T23:50:00-05:00")
        return v


def _when(value: Any, start: datetime | None) -> datetime:
    """An offset after start (``15m``) or an ISO 8601 time with offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a time needs an offset, e.g. 2026-03-08T02:00:00-05:00")
        return value
    if isinstance(value, str) and "T" in value:
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an ISO 8601 time") from None
        if t.tzinfo is None:
            raise ValueError(f"'{value}' needs an offset, e.g. {value}Z or {value}-05:00")
        return t
    if start is None:  # reading ``start`` itself: only a time will do
        raise ValueError(
            f"'{value}' is not an ISO 8601 time with an offset, e.g. 2026-03-07T23:50:00-05:00"
        )
    try:
        return start + parse_duration(value)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


def _validation_problems(
    doc: Document, base: tuple[str | int, ...], exc: ValidationError
) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}'"
        elif err["type"] == "missing":
            msg = f"'{loc[-1]}' is required"
        where = ".".join(str(x) for x in loc)
        out.append(Problem(doc.where((*base, *loc)), f"{where}: {msg}" if where else msg))
    return out


def parse_scenario(text: str, file: str, base_dir: Path | None = None) -> Scenario:
    try:
        doc = document_from_text(text, file)
    except PolicyFileError as exc:
        raise ScenarioInvalid(exc.problems) from None
    data = doc.data
    problems: list[Problem] = []
    unknown = sorted(
        set(data) - {"policy", "start", "until", "events", "description", "name", "show"}
    )
    for key in unknown:
        problems.append(Problem(doc.where((key,)), f"unknown key '{key}'"))
    start: datetime | None = None
    try:
        start = _when(data.get("start"), None) if "start" in data else None
        if start is None:
            problems.append(Problem(doc.root, "'start' is required (ISO 8601 with offset)"))
    except ValueError as exc:
        problems.append(Problem(doc.where(("start",)), f"start: {exc}"))
    until: datetime | None = None
    if "until" not in data:
        problems.append(Problem(doc.root, "'until' is required (a duration or an ISO time)"))
    elif start is not None:
        try:
            until = _when(data["until"], start)
            if until < start:
                problems.append(Problem(doc.where(("until",)), "until: is before start"))
        except ValueError as exc:
            problems.append(Problem(doc.where(("until",)), f"until: {exc}"))
    policy: Path | None = None
    if "policy" in data:
        if not isinstance(data["policy"], str) or not data["policy"].strip():
            problems.append(Problem(doc.where(("policy",)), "policy: a file path"))
        else:
            policy = Path(data["policy"])
    raw_events = data.get("events", [])
    if not isinstance(raw_events, list):
        problems.append(Problem(doc.where(("events",)), "events: a list of events"))
        raw_events = []
    events: list[Event] = []
    for i, raw in enumerate(raw_events):
        base: tuple[str | int, ...] = ("events", i)
        pos = doc.where(base)
        if not isinstance(raw, dict) or "at" not in raw:
            problems.append(Problem(pos, f"events[{i}]: an event is a map with 'at' and one kind"))
            continue
        kinds = [k for k in raw if k != "at"]
        bad = [k for k in kinds if k not in KINDS]
        for k in bad:
            problems.append(
                Problem(
                    doc.where((*base, k)),
                    f"events[{i}]: unknown event kind '{k}' (known: {', '.join(KINDS)})",
                )
            )
        if bad:
            continue
        if len(kinds) != 1:
            problems.append(Problem(pos, f"events[{i}]: give exactly one event kind per item"))
            continue
        kind = kinds[0]
        try:
            at = _when(raw["at"], start) if start else None
        except ValueError as exc:
            problems.append(Problem(doc.where((*base, "at")), f"events[{i}].at: {exc}"))
            continue
        if at is None:
            continue
        body_raw = raw[kind]
        model: type[BaseModel] = (
            Create
            if kind == "create"
            else Alert
            if kind == "alert"
            else Override
            if kind == "override"
            else Activity
            if kind == "activity"
            else Act
        )
        try:
            body = model.model_validate(body_raw if body_raw is not None else {})
        except ValidationError as exc:
            problems.extend(_validation_problems(doc, (*base, kind), exc))
            continue
        events.append(
            Event(at=at, kind=kind, body=body, index=i, position=doc.where((*base, kind)))
        )
    events.sort(key=lambda e: (e.at, e.index))
    problems.extend(_check_refs(events))
    show = data.get("show", [])
    if not isinstance(show, list) or any(s not in SHOWABLE for s in show):
        problems.append(
            Problem(
                doc.where(("show",)),
                f"show: a list of what to add to the output, from: {', '.join(sorted(SHOWABLE))}",
            )
        )
        show = []
    if problems or start is None or until is None:
        raise ScenarioInvalid(problems)
    return Scenario(
        file=file, policy=policy, start=start, until=until, events=events, show=frozenset(show)
    )


def _check_refs(events: list[Event]) -> list[Problem]:
    """Refs must be created (by ``create`` or a named ``alert``) before they are used."""
    problems = []
    created: dict[str, Event] = {}
    for e in events:
        ref = getattr(e.body, "ref", None)
        if e.kind in ("create", "alert", "activity"):
            if ref is None:
                continue
            if ref in created and e.kind == "create":
                problems.append(
                    Problem(e.position, f"ref '{ref}' is already used by {created[ref].position}")
                )
            created.setdefault(ref, e)
        elif ref is not None and ref not in created:
            problems.append(
                Problem(e.position, f"unknown ref '{ref}': no escalation of that name exists yet")
            )
    return problems


# The most a scenario file may be: a simulated day of 10,000 escalations is about 3 MB.
MAX_SCENARIO_BYTES = 16_000_000


def load_scenario(path: Path) -> Scenario:
    try:
        raw = read_regular_file(path, str(path), MAX_SCENARIO_BYTES, what="a scenario")
    except PolicyFileError as exc:
        raise ScenarioInvalid(exc.problems) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioInvalid([Problem(Position(str(path), line, 1), "not UTF-8 text")]) from None
    return parse_scenario(text, str(path))
