"""SLA clocks: which targets apply to an escalation, on which calendar, and when they fall due.

Pure functions of the policy and given times. Each target says where it came from
(``source``) so a timeline can answer "why is this due at 10:30 on Monday?".

Precedence, most specific first:

- targets: the category's ``sla`` > the ``sla.rows`` row for (team, priority) > the
  priority; for the response clock the team's level comes last. Within one of these
  layers a first-response target for the escalation's channel beats the generic
  ``response`` target.
- calendar: the priority's > the team's > the team's level's > ``policy.default_calendar``
  > 24/7 in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from escalade.durations import format_duration
from escalade.policy.models import Calendar, Channel, Policy, SlaRow, Target, Targets
from escalade.sla.calendar import BusinessCalendar
from escalade.sla.localtime import require_aware


class ClockName(StrEnum):
    """The SLA clocks an escalation can run."""

    response = "response"
    acknowledgement = "acknowledgement"
    investigation = "investigation"
    resolution = "resolution"
    update = "update"


@dataclass(frozen=True)
class SlaTarget:
    """A resolved time target with its reason: ``target`` (and ``maximum``) of business time."""

    target: timedelta
    maximum: timedelta | None
    source: str
    """Where it came from: "category payment_failed sla", "sla row engineering×P0", …"""
    field: str
    """Which setting there: "response", "first_response.chat", "updates.internal", …"""

    @classmethod
    def of(cls, target: Target, source: str, field: str) -> SlaTarget:
        return cls(target.target, target.maximum, source, field)

    def limit(self) -> timedelta:
        """The breach point: the maximum when there is one, else the target."""
        return self.maximum if self.maximum is not None else self.target

    def describe(self) -> str:
        text = format_duration(self.target)
        if self.maximum is not None:
            text += f" (maximum {format_duration(self.maximum)})"
        return f"{text} from {self.source} ({self.field})"


# --------------------------------------------------------------------------- targets


def _row(policy: Policy, team_id: str | None, priority_id: str | None) -> SlaRow | None:
    if team_id is None or priority_id is None:
        return None
    return next(
        (r for r in policy.sla.rows if r.team == team_id and r.priority == priority_id), None
    )


def _layers(
    policy: Policy, category_id: str | None, team_id: str | None, priority_id: str | None
) -> Iterator[tuple[Targets, str]]:
    """The target layers that apply, most specific first, each with its source text."""
    if category_id is not None:
        category = policy.get_category(category_id)
        if category.sla is not None:
            yield category.sla, f"category {category.id} sla"
    row = _row(policy, team_id, priority_id)
    if row is not None:
        yield row, f"sla row {row.team}×{row.priority}"
    if priority_id is not None:
        yield policy.get_priority(priority_id), f"priority {priority_id}"


def _response(
    policy: Policy,
    layers: list[tuple[Targets, str]],
    team_id: str | None,
    channel: Channel | None,
) -> SlaTarget | None:
    for targets, source in layers:
        if channel is not None and channel in targets.first_response:
            return SlaTarget.of(
                targets.first_response[channel], source, f"first_response.{channel}"
            )
        if targets.response is not None:
            return SlaTarget.of(targets.response, source, "response")
    team = policy.get_team(team_id) if team_id is not None else None
    if team is not None and team.level is not None:
        level = policy.get_level(team.level)
        source = f"level {level.name or level.id}"
        if channel is not None and channel in level.response_by_channel:
            return SlaTarget(
                level.response_by_channel[channel], None, source, f"response_by_channel.{channel}"
            )
        if level.response_direct is not None:  # it starts here: the customer came directly
            return SlaTarget(level.response_direct, None, source, "response_direct")
        if level.response is not None:
            return SlaTarget(level.response, None, source, "response")
    return None


def _update(layers: list[tuple[Targets, str]]) -> SlaTarget | None:
    """The most demanding update cadence of the first layer that sets any."""
    for targets, source in layers:
        if targets.updates:
            audience, every = min(targets.updates.items(), key=lambda item: item[1])
            return SlaTarget(every, None, source, f"updates.{audience}")
    return None


def sla_targets(
    policy: Policy,
    *,
    category_id: str | None,
    team_id: str | None,
    priority_id: str | None,
    channel: Channel | str | None = None,
) -> dict[ClockName, SlaTarget]:
    """The SLA target of each clock that has one, with the layer it came from.

    Ids must exist in the policy (the validator guarantees references; the caller, ids it
    passes). A clock that no layer sets is absent from the result.
    """
    chan = Channel(channel) if channel is not None else None
    layers = list(_layers(policy, category_id, team_id, priority_id))
    found: dict[ClockName, SlaTarget] = {}
    response = _response(policy, layers, team_id, chan)
    if response is not None:
        found[ClockName.response] = response
    for clock in (ClockName.acknowledgement, ClockName.investigation, ClockName.resolution):
        for targets, source in layers:
            target: Target | None = getattr(targets, clock.value)
            if target is not None:
                found[clock] = SlaTarget.of(target, source, clock.value)
                break
    update = _update(layers)
    if update is not None:
        found[ClockName.update] = update
    return found


def arrival_response(
    policy: Policy,
    team_id: str | None,
    level_id: str | None,
    priority_id: str | None,
    *,
    level_reached: bool = True,
) -> tuple[SlaTarget, str | None] | None:
    """The response target that starts when an escalation *reaches* a team or level (by an
    escalation, a reassignment, a trigger or a ladder step), not only at creation (seed
    002: Tier 3 answers in 15 min for P0/P1, Tier 4 in 1 h in an emergency).

    Most specific first: the ``sla.rows`` row for (team, priority); when the escalation
    has just reached a level (``level_reached``), the row for (the level's own team,
    priority) (a ladder step that pages Tier 3 while the ticket stays with its team), then
    the level's ``response``. The category's and the priority's targets are not used
    here: they are the whole escalation's clocks, running since creation. Returns the
    target and the team whose row it is (None for the level's own target)."""
    level = next((lv for lv in policy.levels if lv.id == level_id), None)
    teams = [team_id] if team_id is not None else []
    if level_reached and level is not None and level.team and level.team not in teams:
        teams.append(level.team)
    for team in teams:
        row = _row(policy, team, priority_id)
        if row is not None and row.response is not None:
            source = f"sla row {row.team}×{row.priority}"
            return SlaTarget.of(row.response, source, "response"), row.team
    if level_reached and level is not None and level.response is not None:
        return SlaTarget(level.response, None, f"level {level.id}", "response"), None
    return None


# --------------------------------------------------------------------------- calendars

ALWAYS = Calendar(id="always", name="24/7", timezone="UTC", always=True)
"""The calendar used when the policy names none: clocks always run."""


def calendar_choice(
    policy: Policy, team_id: str | None, priority_id: str | None
) -> tuple[Calendar, str]:
    """The calendar SLA clocks run on, and why (the setting that chose it)."""
    if priority_id is not None:
        priority = policy.get_priority(priority_id)
        if priority.calendar is not None:
            return policy.get_calendar(priority.calendar), f"priority {priority.id} calendar"
    team = policy.get_team(team_id) if team_id is not None else None
    if team is not None and team.calendar is not None:
        return policy.get_calendar(team.calendar), f"team {team.id} calendar"
    if team is not None and team.level is not None:
        level = policy.get_level(team.level)
        if level.calendar is not None:
            return policy.get_calendar(level.calendar), f"level {level.name or level.id} calendar"
    if policy.default_calendar is not None:
        return policy.get_calendar(policy.default_calendar), "policy default calendar"
    return ALWAYS, "no calendar set: 24/7 UTC"


def calendar_for(policy: Policy, team_id: str | None, priority_id: str | None) -> Calendar:
    """priority.calendar > team.calendar > the team's level calendar > default > 24/7 UTC."""
    return calendar_choice(policy, team_id, priority_id)[0]


# --------------------------------------------------------------------------- deadlines


@dataclass(frozen=True)
class Deadline:
    """When a clock warns, is due and breaches its maximum (all UTC)."""

    clock: ClockName
    started: datetime
    warn_at: datetime
    due: datetime
    maximum_due: datetime | None
    source: str = ""

    def breach_at(self) -> datetime:
        """The hard breach point: the maximum when there is one, else the due time."""
        return self.maximum_due if self.maximum_due is not None else self.due


def _check_fraction(warn_fraction: float) -> None:
    if not 0 < warn_fraction < 1:
        raise ValueError(f"warn_at must be a fraction between 0 and 1, got {warn_fraction}")


def deadline(
    clock: ClockName,
    target: SlaTarget,
    started: datetime,
    calendar: BusinessCalendar,
    warn_fraction: float = 0.8,
) -> Deadline:
    """The deadline of a clock started at ``started`` (business time on ``calendar``)."""
    _check_fraction(warn_fraction)
    started = require_aware(started, "started")
    return Deadline(
        clock=clock,
        started=started,
        warn_at=calendar.add(started, target.target * warn_fraction),
        due=calendar.add(started, target.target),
        maximum_due=calendar.add(started, target.maximum) if target.maximum is not None else None,
        source=target.source,
    )


def deadlines(
    policy: Policy,
    *,
    started: datetime,
    category_id: str | None,
    team_id: str | None,
    priority_id: str | None,
    channel: Channel | str | None = None,
) -> dict[ClockName, Deadline]:
    """Every clock's deadline for an escalation opened at ``started``."""
    calendar = BusinessCalendar(calendar_for(policy, team_id, priority_id))
    targets = sla_targets(
        policy,
        category_id=category_id,
        team_id=team_id,
        priority_id=priority_id,
        channel=channel,
    )
    return {
        clock: deadline(clock, target, started, calendar, policy.sla.warn_at)
        for clock, target in targets.items()
    }


# --------------------------------------------------------------------------- pausing


Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class ClockState:
    """A clock's history: started, paused and resumed (e.g. waiting on the customer), stopped.

    Pure and frozen: each transition returns a new state. Paused time does not count
    towards the target; ``due`` is None while the clock is not running (not started yet or
    paused), since the deadline then depends on when it resumes.
    """

    clock: ClockName
    target: SlaTarget
    started: datetime | None = None
    paused_spans: tuple[Span, ...] = ()
    paused_at: datetime | None = None
    stopped_at: datetime | None = None

    @property
    def status(self) -> str:
        if self.started is None:
            return "pending"
        if self.stopped_at is not None:
            return "stopped"
        if self.paused_at is not None:
            return "paused"
        return "running"

    def _latest(self) -> datetime | None:
        times = [self.started, self.paused_at, self.stopped_at]
        times += [end for _, end in self.paused_spans]
        present = [t for t in times if t is not None]
        return max(present) if present else None

    def _at(self, at: datetime, action: str, allowed: set[str]) -> datetime:
        at = require_aware(at, action)
        if self.status not in allowed:
            raise ValueError(f"cannot {action} the {self.clock} clock: it is {self.status}")
        latest = self._latest()
        if latest is not None and at < latest:
            raise ValueError(
                f"cannot {action} the {self.clock} clock at {at.isoformat()}: "
                f"before its last change at {latest.isoformat()}"
            )
        return at

    def start(self, at: datetime) -> ClockState:
        return replace(self, started=self._at(at, "start", {"pending"}))

    def pause(self, at: datetime) -> ClockState:
        return replace(self, paused_at=self._at(at, "pause", {"running"}))

    def resume(self, at: datetime) -> ClockState:
        at = self._at(at, "resume", {"paused"})
        assert self.paused_at is not None
        return replace(
            self, paused_spans=(*self.paused_spans, (self.paused_at, at)), paused_at=None
        )

    def stop(self, at: datetime) -> ClockState:
        at = self._at(at, "stop", {"running", "paused"})
        if self.paused_at is not None:  # stopping while paused closes the pause
            return replace(
                self,
                paused_spans=(*self.paused_spans, (self.paused_at, at)),
                paused_at=None,
                stopped_at=at,
            )
        return replace(self, stopped_at=at)

    def _segments(self, until: datetime | None) -> list[tuple[datetime, datetime | None]]:
        """Running segments [from, to); the last is open-ended when ``until`` is None."""
        assert self.started is not None
        starts = [self.started, *(end for _, end in self.paused_spans)]
        ends: list[datetime | None] = [begin for begin, _ in self.paused_spans]
        ends.append(until)
        return list(zip(starts, ends, strict=True))

    def used(self, calendar: BusinessCalendar, at: datetime) -> timedelta:
        """Business time the clock has run up to ``at`` (paused time excluded)."""
        at = require_aware(at, "at")
        if self.started is None:
            return timedelta(0)
        end = min(at, self.stopped_at) if self.stopped_at is not None else at
        if self.paused_at is not None:
            end = min(end, self.paused_at)
        total = timedelta(0)
        for begin, finish in self._segments(end):
            assert finish is not None
            if min(finish, end) > begin:
                total += calendar.elapsed(begin, min(finish, end))
        return total

    def _reach(self, calendar: BusinessCalendar, amount: timedelta) -> datetime:
        """When the running time reaches ``amount``, continuing past the last pause."""
        remaining = amount
        for begin, finish in self._segments(None):
            if finish is None:
                return calendar.add(begin, remaining)
            available = calendar.elapsed(begin, finish)
            if remaining <= available:
                return calendar.add(begin, remaining)
            remaining -= available
        raise AssertionError("unreachable: the last segment is open-ended")  # pragma: no cover

    def due(self, calendar: BusinessCalendar, warn_fraction: float = 0.8) -> Deadline | None:
        """The deadline, with paused spans not counting; None unless running or stopped."""
        _check_fraction(warn_fraction)
        if self.started is None or self.paused_at is not None:
            return None
        target = self.target
        return Deadline(
            clock=self.clock,
            started=self.started,
            warn_at=self._reach(calendar, target.target * warn_fraction),
            due=self._reach(calendar, target.target),
            maximum_due=(
                self._reach(calendar, target.maximum) if target.maximum is not None else None
            ),
            source=target.source,
        )

    def met(self, calendar: BusinessCalendar) -> bool | None:
        """For a stopped clock: was it stopped within its target? None while not stopped."""
        if self.stopped_at is None:
            return None
        return self.used(calendar, self.stopped_at) <= self.target.target
