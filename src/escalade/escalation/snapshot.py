"""What an escalation keeps from its policy when it starts, and the timers that follows.

Pure. The snapshot is stored with the escalation (JSON) and is never rewritten: a later
policy version cannot change the ladder, targets or calendar of an escalation in flight
(Grafana OnCall's escalation snapshot). The escalation also pins its policy version.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from escalade.durations import parse_duration
from escalade.escalation.kinds import TimerKind
from escalade.policy.models import Calendar, Ladder, Level, Policy, Recipient
from escalade.routing.models import Decision
from escalade.sla.calendar import BusinessCalendar
from escalade.sla.clocks import ClockName, SlaTarget, calendar_choice, sla_targets


@dataclass(frozen=True)
class PlannedTimer:
    kind: TimerKind
    due_at: datetime
    key: str
    payload: dict[str, Any]


def build_snapshot(
    policy: Policy,
    decision: Decision,
    channel: str | None,
    started: datetime,
    amount: float | None = None,
) -> dict[str, Any]:
    """The escalation's frozen copy of what its policy said when it started (``amount``:
    the amount at stake, whose authority band may set the resolution clock)."""
    targets = sla_targets(
        policy,
        category_id=decision.category,
        team_id=decision.team or None,
        priority_id=decision.priority,
        channel=channel,
    )
    band = band_resolution(policy, decision.category, amount)
    if band is not None:
        targets[ClockName.resolution] = band
    calendar, calendar_source = calendar_choice(policy, decision.team or None, decision.priority)
    priority = policy.get_priority(decision.priority) if decision.priority else None
    ladder: Ladder | None = (
        policy.get_ladder(priority.ladder) if priority and priority.ladder else None
    )
    postmortem = priority.postmortem if priority else None
    calendar_json, calendar_key = _frozen_dump(calendar)
    ladder_json, ladder_key = _frozen_dump(ladder) if ladder else (None, None)
    return {
        "policy_id": policy.id,
        "decision": decision.model_dump(mode="json"),
        "channel": channel,
        "started": started.isoformat(),
        "targets": {
            str(clock): {
                "target_s": t.target.total_seconds(),
                "maximum_s": t.maximum.total_seconds() if t.maximum is not None else None,
                "source": t.source,
                "field": t.field,
            }
            for clock, t in targets.items()
        },
        "warn_at": policy.sla.warn_at,
        "on_breach": [str(a) for a in policy.sla.on_breach],
        "calendar": calendar_json,
        "calendar_key": calendar_key,
        "calendar_source": calendar_source,
        "ladder": ladder_json,
        "ladder_key": ladder_key,
        "updates": _update_cadence(policy, decision),
        "postmortem": (
            {
                "required": postmortem.required,
                "due_s": postmortem.due.total_seconds() if postmortem.due else None,
            }
            if postmortem
            else None
        ),
        "followups": [
            f.model_dump(mode="json")
            for f in policy.followups
            if (not f.priorities or (decision.priority in f.priorities))
            and (not f.tags or set(f.tags) & set(decision.tags))
        ],
    }


def band_resolution(
    policy: Policy, category_id: str | None, amount: float | None
) -> SlaTarget | None:
    """The resolution clock an amount band's timeline sets (seed 000: "$100-$500 | L2
    Specialist | 24-48 hours"): the band of the category's authority action that holds
    ``amount``, when it has ``resolution``. Most specific of all: it is the amount's."""
    if category_id is None or amount is None:
        return None
    cat = policy.get_category(category_id)
    action = next((a for a in policy.authority.actions if a.id == cat.authority), None)
    if action is None:
        return None
    band = next((b for b in action.bands if b.holds(amount)), None)
    if band is None or band.resolution is None:
        return None
    return SlaTarget.of(
        band.resolution, f"authority {action.id} band '{band.describe()}'", "resolution"
    )


@dataclass(frozen=True, slots=True)
class Target:
    """One SLA clock's target as the escalation froze it."""

    target: timedelta
    maximum: timedelta | None
    source: str
    field: str | None


@dataclass(frozen=True, slots=True)
class FrozenDecision:
    """The parts of the routing decision the run time reads again (the whole decision is
    kept, as stored, in ``raw``)."""

    team: str | None
    handling: tuple[str, ...]
    tags: tuple[str, ...]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Postmortem:
    required: bool
    due: timedelta | None


@dataclass(frozen=True, slots=True)
class Followup:
    """A follow-up reminder as the escalation froze it (the policy's ``followups``)."""

    id: str
    what: str
    every: timedelta
    to: Recipient
    audience: str
    if_idle: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The typed view of a stored snapshot (``EscalationRow.snapshot``, JSON). Built by
    ``Snapshot.of``, which reads every snapshot ever stored (keys added later have
    defaults); the stored JSON itself is never rewritten."""

    policy_id: str | None
    decision: FrozenDecision
    channel: str | None
    targets: tuple[tuple[str, Target], ...]  # in the stored order
    warn_at: float
    on_breach: tuple[str, ...]
    calendar_json: dict[str, Any]
    calendar_key: str
    ladder_json: dict[str, Any] | None
    ladder_key: str | None
    updates: tuple[tuple[str, float], ...]  # audience, seconds
    postmortem: Postmortem | None
    followups: tuple[Followup, ...]

    @staticmethod
    def of(raw: dict[str, Any]) -> Snapshot:
        """The snapshot of a stored JSON object, parsed once per object."""
        hit = _TYPED.get(id(raw))
        if hit is not None and hit[0] is raw:
            return hit[1]
        snap = _parse(raw)
        with _LOCK:
            if len(_TYPED) >= _CACHE_MAX:
                _TYPED.pop(next(iter(_TYPED)))
            _TYPED[id(raw)] = (raw, snap)
        return snap

    @property
    def calendar(self) -> BusinessCalendar:
        raw = self.calendar_json
        return _parsed(
            _CALENDARS, self.calendar_key, lambda: BusinessCalendar(Calendar.model_validate(raw))
        )

    @property
    def ladder(self) -> Ladder | None:
        raw = self.ladder_json
        if not raw or self.ladder_key is None:
            return None
        return _parsed(_LADDERS, self.ladder_key, lambda: Ladder.model_validate(raw))

    def target(self, clock: str) -> Target | None:
        return next((t for c, t in self.targets if c == clock), None)

    def only_target(self, clock: str) -> Snapshot:
        """The same snapshot with one clock's target alone (a resumed resolution clock)."""
        return replace(self, targets=tuple((c, t) for c, t in self.targets if c == clock))


def _parse(raw: dict[str, Any]) -> Snapshot:
    d = raw.get("decision") or {}
    pm = raw.get("postmortem")
    calendar_json = raw["calendar"]
    ladder_json = raw.get("ladder") or None
    return Snapshot(
        policy_id=raw.get("policy_id"),
        decision=FrozenDecision(
            team=d.get("team"),
            handling=tuple(d.get("handling") or ()),
            tags=tuple(d.get("tags") or ()),
            raw=d,
        ),
        channel=raw.get("channel"),
        targets=tuple(
            (
                clock,
                Target(
                    timedelta(seconds=t["target_s"]),
                    timedelta(seconds=t["maximum_s"]) if t.get("maximum_s") is not None else None,
                    t.get("source") or "",
                    t.get("field"),
                ),
            )
            for clock, t in (raw.get("targets") or {}).items()
        ),
        warn_at=float(raw.get("warn_at", 0.8)),
        on_breach=tuple(str(a) for a in raw.get("on_breach") or ()),
        calendar_json=calendar_json,
        # snapshots of session 1 carry no content keys
        calendar_key=raw.get("calendar_key") or _content_key(calendar_json),
        ladder_json=ladder_json,
        ladder_key=(raw.get("ladder_key") or _content_key(ladder_json)) if ladder_json else None,
        updates=tuple(sorted((raw.get("updates") or {}).items())),
        postmortem=(
            Postmortem(
                bool(pm.get("required")),
                timedelta(seconds=pm["due_s"]) if pm.get("due_s") else None,
            )
            if pm
            else None
        ),
        followups=tuple(
            Followup(
                id=f["id"],
                what=f["what"],
                every=parse_duration(f["every"]),
                to=Recipient.model_validate(f["to"]),
                audience=f.get("audience") or "internal",
                if_idle=bool(f.get("if_idle")),
            )
            for f in raw.get("followups") or ()
        ),
    )


def business_calendar(calendar: Calendar) -> BusinessCalendar:
    """A policy calendar ready for business-time arithmetic, built once per content."""
    _, key = _frozen_dump(calendar)
    return _parsed(_CALENDARS, key, lambda: BusinessCalendar(calendar))


def _content_key(value: Any) -> str:
    """SHA-256 of the canonical JSON: the name a snapshot gives its calendar and ladder."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


# Calendars (with their holiday caches) and ladders in snapshots, parsed once per content:
# few distinct ones, many escalations.
_CALENDARS: dict[str, BusinessCalendar] = {}
_LADDERS: dict[str, Ladder] = {}
_TYPED: dict[int, tuple[dict[str, Any], Snapshot]] = {}  # by stored object, held while cached
_CACHE_MAX = 1024
_LOCK = threading.Lock()
T = TypeVar("T")


def _parsed(cache: dict[str, T], key: str, parse: Callable[[], T]) -> T:
    hit = cache.get(key)
    if hit is None:
        hit = parse()
        with _LOCK:
            if len(cache) >= _CACHE_MAX:
                cache.pop(next(iter(cache)))
            cache[key] = hit
    return hit


# A policy's calendars and ladders as JSON and their content key, made once per policy
# object (policies are immutable and long-lived; holding the object keeps its id unique).
_DUMPS: dict[int, tuple[object, dict[str, Any], str]] = {}


def _frozen_dump(model: Calendar | Ladder) -> tuple[dict[str, Any], str]:
    hit = _DUMPS.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1], hit[2]
    dumped = model.model_dump(mode="json")
    key = _content_key(dumped)
    with _LOCK:
        if len(_DUMPS) >= _CACHE_MAX:
            _DUMPS.pop(next(iter(_DUMPS)))
        _DUMPS[id(model)] = (model, dumped, key)
    return dumped, key


def sla_timers(
    snapshot: Snapshot,
    esc_id: int,
    started: datetime,
    generation: int = 0,
    used: timedelta = timedelta(0),
) -> list[PlannedTimer]:
    """Warning and breach timers of every SLA clock (business time on the snapshot's
    calendar). ``generation`` re-arms clocks after a pause; ``used`` is the business time
    the clocks already ran before ``started`` (a resumed clock), so the warning still comes
    at ``warn_at`` of the whole target, and not again if that point has passed."""
    calendar = snapshot.calendar
    warn_fraction = snapshot.warn_at
    out: list[PlannedTimer] = []
    for clock, t in snapshot.targets:
        if clock == ClockName.update:
            continue
        target = t.target
        limit = t.maximum if t.maximum is not None else t.target
        due = calendar.add(started, max(limit - used, timedelta(0)))
        warn_after = target * warn_fraction - used
        payload = {"clock": clock, "due": due.isoformat(), "source": t.source}
        prefix = f"esc:{esc_id}:sla:{clock}:{generation}"
        if target > timedelta(0) and warn_after > timedelta(0):
            warn = calendar.add(started, warn_after)
            out.append(PlannedTimer(TimerKind.sla_warning, warn, f"{prefix}:warn", payload))
        if limit > target and target - used > timedelta(0):
            # target and maximum (seed 002): passing the target warns; the maximum breaches
            missed = calendar.add(started, target - used)
            out.append(
                PlannedTimer(
                    TimerKind.sla_warning,
                    missed,
                    f"{prefix}:target",
                    {**payload, "target_missed": True},
                )
            )
        out.append(PlannedTimer(TimerKind.sla_breach, due, f"{prefix}:breach", payload))
    return out


def level_timers(
    level: Level | None,
    calendar: BusinessCalendar,
    esc_id: int,
    since: datetime,
    generation: int,
    warn_fraction: float,
    *,
    response: SlaTarget | None,
    team: str | None = None,
    responder: str | None = None,
    response_calendar: BusinessCalendar | None = None,
) -> list[PlannedTimer]:
    """Clocks of the level (or team) an escalation has just reached: its response target
    (``response``: after an escalation, reassignment, trigger or ladder step the new team
    or level must answer in time; see ``sla.clocks.arrival_response``; ``team``: the team
    it is with, whose hand-on ends the clock; ``responder``: the team whose target it is)
    and the level's time box (``resolve_within``)."""
    out: list[PlannedTimer] = []
    level_id = level.id if level is not None else None
    prefix = f"esc:{esc_id}:level:{level_id or '-'}:{generation}"
    base: dict[str, Any] = {"level": level_id, "since": since.isoformat()}
    if response is not None and response.target > timedelta(0):
        if team is not None:
            base_r = {**base, "team": team, **({"responder": responder} if responder else {})}
            prefix_r = f"{prefix}:{team}"
        else:
            base_r, prefix_r = base, prefix
        rcal = response_calendar or calendar
        due = rcal.add(since, response.limit())
        payload = {
            **base_r,
            "clock": "response",
            "due": due.isoformat(),
            "source": f"{response.source} {response.field}",
        }
        warn = rcal.add(since, response.target * warn_fraction)
        out.append(
            PlannedTimer(
                TimerKind.level_clock,
                warn,
                f"{prefix_r}:response:warn",
                {**payload, "stage": "warn"},
            )
        )
        out.append(
            PlannedTimer(
                TimerKind.level_clock,
                due,
                f"{prefix_r}:response:breach",
                {**payload, "stage": "breach"},
            )
        )
    if level is not None and level.resolve_within is not None:
        due = calendar.add(since, level.resolve_within)
        out.append(
            PlannedTimer(
                TimerKind.level_clock,
                due,
                f"{prefix}:timebox",
                {**base, "clock": "timebox", "due": due.isoformat(), "stage": "breach"},
            )
        )
    return out


def ladder_timers(
    snapshot: Snapshot, esc_id: int, started: datetime, generation: int = 0
) -> list[PlannedTimer]:
    """One timer per ladder step (wall-clock time after the start), for each repeat."""
    ladder = snapshot.ladder
    if ladder is None:
        return []
    steps = ladder.steps
    last = steps[-1].after
    spacing = (steps[1].after - steps[0].after) if len(steps) > 1 else last
    cycle = last + (spacing if spacing > timedelta(0) else timedelta(minutes=15))
    out = []
    for rep in range(ladder.repeat + 1):
        for i, step in enumerate(steps):
            out.append(
                PlannedTimer(
                    TimerKind.ladder_step,
                    started + rep * cycle + step.after,
                    f"esc:{esc_id}:ladder:{generation}:{rep}:{i}",
                    {"step": i, "repeat": rep, "ladder": ladder.id},
                )
            )
    return out


def _gen(generation: int) -> str:
    """Key part that re-arms reminders after a reopen (none for the first run)."""
    return f"g{generation}:" if generation else ""


def followup_timer(
    snapshot: Snapshot,
    esc_id: int,
    index: int,
    after: datetime,
    n: int,
    generation: int = 0,
) -> PlannedTimer:
    f = snapshot.followups[index]
    return PlannedTimer(
        TimerKind.followup,
        after + f.every,
        f"esc:{esc_id}:followup:{f.id}:{_gen(generation)}{n}",
        {"index": index, "n": n, "generation": generation},
    )


def followup_timers(
    snapshot: Snapshot, esc_id: int, after: datetime, generation: int = 0
) -> list[PlannedTimer]:
    """The first timer of each follow-up and of each update cadence."""
    return [
        *(
            followup_timer(snapshot, esc_id, i, after, 1, generation)
            for i in range(len(snapshot.followups))
        ),
        *update_timers(snapshot, esc_id, after, 1, generation),
    ]


def _update_cadence(policy: Policy, decision: Decision) -> dict[str, float]:
    """Update cadence per audience from the most specific layer that sets any: the
    category's SLA, then the (team, priority) row, then the priority."""
    layers = []
    if decision.category:
        cat = policy.get_category(decision.category)
        if cat.sla is not None:
            layers.append(cat.sla.updates)
    if decision.priority:
        layers.extend(
            r.updates
            for r in policy.sla.rows
            if r.team == decision.team and r.priority == decision.priority
        )
        layers.append(policy.get_priority(decision.priority).updates)
    for updates in layers:
        if updates:
            return {audience: every.total_seconds() for audience, every in updates.items()}
    return {}


def update_timers(
    snapshot: Snapshot,
    esc_id: int,
    after: datetime,
    n: int,
    generation: int = 0,
    audience: str | None = None,
) -> list[PlannedTimer]:
    """The next update reminder of each audience (or of one), at its own cadence."""
    return [
        PlannedTimer(
            TimerKind.update_due,
            after + timedelta(seconds=seconds),
            f"esc:{esc_id}:update:{_gen(generation)}{who}:{n}",
            {"audience": who, "n": n, "generation": generation},
        )
        for who, seconds in snapshot.updates
        if seconds > 0 and (audience is None or who == audience)
    ]
