"""On-call schedules and overrides over HTTP (issue 19, items 5 and 8).

``GET /v1/schedules`` lists the active policy's schedules with who is on call now;
``GET /v1/schedules/{name}`` shows one (its layers, and who is on call now or ``?at=``);
``GET /v1/schedules/{name}/oncall?from=&until=`` the shifts of a window. Overrides are
stored (``oncall_overrides``) and the engine pages by them in every process from the
moment they commit: ``POST`` adds one (person, start, end; tz-aware, end after start, the
person in the policy), ``GET`` lists them, ``DELETE …/{id}`` removes one. Who may add or
remove overrides is an editing right (``auth.editing``: admins, the leads of the teams
the schedule is on call for, and the roles ``editing.overrides`` names); a refusal is 403
naming the rule and is audited, and every change is audited with before and after in the
unit of work that makes it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from escalade.api.errors import NOT_FOUND, PROTECTED, ApiError
from escalade.api.security import Gate, address
from escalade.auth import audit
from escalade.auth.editing import EditDecision, may_edit
from escalade.auth.scopes import Principal, Scope
from escalade.oncall.schedule import Override, TooManyShifts, on_call, shifts
from escalade.policy import Policy
from escalade.policy.models import Schedule
from escalade.service import EscalationService
from escalade.service.oncall import override_of
from escalade.store import UnitOfWork
from escalade.store.rows import OverrideRow

MAX_WINDOW = timedelta(days=92)
"""The longest window ``/oncall`` answers for (a quarter)."""
MAX_SHIFTS = 2000
EARLIEST, LATEST = 1900, 2999  # years: outside them a time is a mistake, not a plan


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: str = Field(min_length=1, max_length=80, description="The policy person on call")
    start: datetime = Field(description="When it starts, with a time zone (ISO 8601)")
    end: datetime = Field(description="When it ends (after start), with a time zone")
    replaces: str | None = Field(
        None,
        min_length=1,
        max_length=80,
        description="The person covered for (default: whoever the highest layer has on call)",
    )
    reason: str | None = Field(None, max_length=2000)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def override_view(row: OverrideRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "schedule": row.schedule,
        "person": row.person,
        "replaces": row.replaces,
        "start": _iso(row.start_at),
        "end": _iso(row.end_at),
        "reason": row.reason,
        "created_by": row.created_by,
        "created_at": _iso(row.created_at),
    }


def _instant(value: datetime, loc: list[str]) -> datetime:
    """A time given by a caller, in UTC: it must carry its zone and be a plausible date."""
    field = str(loc[-1])
    if value.tzinfo is None or value.utcoffset() is None:
        raise ApiError(
            422,
            f"{field} has no time zone: give one, e.g. 2026-03-02T09:00:00Z or +01:00",
            "value_error",
            loc=loc,
        )
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc.year <= LATEST:
        raise ApiError(
            422, f"{field} must be between {EARLIEST} and {LATEST}", "value_error", loc=loc
        )
    return utc


def schedule_router(
    gate: Gate, service: EscalationService, current: Callable[[], Policy]
) -> APIRouter:
    api = APIRouter(prefix="/v1/schedules", tags=["schedules"], responses=PROTECTED)
    reader = Depends(gate.require(Scope.read))
    writer = Depends(gate.require(Scope.write))

    def _schedule(policy: Policy, name: str) -> Schedule:
        found = next((s for s in policy.schedules if s.id == name), None)
        if found is None:
            known = ", ".join(s.id for s in policy.schedules) or "none"
            raise ApiError(
                404, f"no schedule '{name}' (the policy has: {known})", "not_found", loc=["path"]
            )
        return found

    def _teams(policy: Policy, schedule: Schedule) -> list[str]:
        return [t.id for t in policy.teams if t.schedule == schedule.id]

    def _overrides(uow: UnitOfWork, schedule: Schedule, after: datetime) -> list[Override]:
        """The overrides of a schedule that end after ``after``: stored, then in-process."""
        stored = uow.overrides.for_schedule(schedule.id, ending_after=after)
        return [*map(override_of, stored), *service.overrides.get(schedule.id, ())]

    def _summary(
        policy: Policy, schedule: Schedule, at: datetime, ov: Sequence[Override]
    ) -> dict[str, Any]:
        return {
            "id": schedule.id,
            "name": schedule.name,
            "timezone": schedule.timezone,
            "teams": _teams(policy, schedule),
            "at": _iso(at),
            "on_call": on_call(schedule, at, ov),
        }

    def _right(policy: Policy, who: Principal, schedule: Schedule) -> EditDecision:
        teams: list[str | None] = [*_teams(policy, schedule)] or [None]
        decisions = [may_edit(policy, who, "overrides", team) for team in teams]
        return next((d for d in decisions if d.allowed), decisions[0])

    def _may_change(request: Request, who: Principal, policy: Policy, schedule: Schedule) -> None:
        right = _right(policy, who, schedule)
        if not right.allowed:
            raise gate.refuse(
                request,
                403,
                right.reason,
                "forbidden",
                who,
                loc=["path", "name"],
                right="edit_overrides",
            )

    @api.get("")
    def list_schedules(who: Principal = reader) -> list[dict[str, Any]]:
        """The active policy's schedules, each with who is on call now (overrides
        included)."""
        policy, now = current(), gate.clock.now()
        with service.store.unit_of_work(readonly=True) as uow:
            return [_summary(policy, s, now, _overrides(uow, s, now)) for s in policy.schedules]

    @api.get("/{name}", responses=NOT_FOUND)
    def get_schedule(
        name: str = Path(max_length=80),
        at: datetime | None = Query(None, description="When (default: now), with a time zone"),
        who: Principal = reader,
    ) -> dict[str, Any]:
        """One schedule: its layers (the last is the highest) and who is on call now or
        ``at`` a given time, with the overrides in force then."""
        policy = current()
        schedule = _schedule(policy, name)
        when = _instant(at, ["query", "at"]) if at is not None else gate.clock.now()
        with service.store.unit_of_work(readonly=True) as uow:
            ov = _overrides(uow, schedule, when)
        return {
            **_summary(policy, schedule, when, ov),
            "layers": [
                {
                    "kind": r.kind,
                    "start": r.start,
                    "handoff": r.handoff.isoformat() if r.handoff else None,
                    "every": str(r.every) if r.every is not None else None,
                    "people": r.people,
                }
                for r in schedule.layers
            ],
            "overrides_in_force": [
                {
                    "person": o.person,
                    "replaces": o.replaces,
                    "start": _iso(o.start),
                    "end": _iso(o.end),
                }
                for o in ov
                if o.covers(when)
            ],
        }

    @api.get("/{name}/oncall", responses=NOT_FOUND)
    def get_shifts(
        name: str = Path(max_length=80),
        from_: datetime | None = Query(None, alias="from", description="Start (default: now)"),
        until: datetime | None = Query(None, description="End (default: a week after from)"),
        who: Principal = reader,
    ) -> dict[str, Any]:
        """Who is on call through a window (at most 92 days): one entry per stretch with
        the same people, highest layer first, overrides included."""
        policy = current()
        schedule = _schedule(policy, name)
        start = _instant(from_, ["query", "from"]) if from_ is not None else gate.clock.now()
        end = (
            _instant(until, ["query", "until"]) if until is not None else start + timedelta(days=7)
        )
        if end <= start:
            raise ApiError(422, "until must be after from", "value_error", loc=["query", "until"])
        if end - start > MAX_WINDOW:
            raise ApiError(
                422, "the window is longer than 92 days: ask for less", "value_error",
                loc=["query", "until"],
            )  # fmt: skip
        with service.store.unit_of_work(readonly=True) as uow:
            ov = _overrides(uow, schedule, start)
        try:
            found = shifts(schedule, start, end, ov, limit=MAX_SHIFTS)
        except TooManyShifts as exc:
            raise ApiError(422, str(exc), "value_error", loc=["query", "until"]) from None
        return {
            "schedule": schedule.id,
            "from": _iso(start),
            "until": _iso(end),
            "shifts": [
                {"start": _iso(s.start), "end": _iso(s.end), "on_call": list(s.people)}
                for s in found
            ],
        }

    @api.get("/{name}/overrides", responses=NOT_FOUND)
    def list_overrides(
        name: str = Path(max_length=80), who: Principal = reader
    ) -> list[dict[str, Any]]:
        """The schedule's stored overrides, in the order they were made (a later one wins
        where two overlap)."""
        schedule = _schedule(current(), name)
        with service.store.unit_of_work(readonly=True) as uow:
            return [override_view(r) for r in uow.overrides.for_schedule(schedule.id)]

    @api.post("/{name}/overrides", status_code=201, responses=NOT_FOUND)
    def add_override(
        body: OverrideIn,
        request: Request,
        name: str = Path(max_length=80),
        who: Principal = writer,
    ) -> dict[str, Any]:
        """Put someone on call for a while (an editing right: admins, the leads of the
        schedule's teams, the roles ``editing.overrides`` names). Pages from ``start`` to
        ``end`` go to them, in every process."""
        policy = current()
        schedule = _schedule(policy, name)
        _may_change(request, who, policy, schedule)
        start = _instant(body.start, ["body", "start"])
        end = _instant(body.end, ["body", "end"])
        if end <= start:
            raise ApiError(422, "end must be after start", "value_error", loc=["body", "end"])
        people = {p.id for p in policy.people}
        for field, person in (("person", body.person), ("replaces", body.replaces)):
            if person is not None and person not in people:
                raise ApiError(
                    422,
                    f"{field}: no person '{person}' in policy '{policy.id}'",
                    "unknown_value",
                    loc=["body", field],
                )
        if body.replaces is not None and body.replaces == body.person:
            raise ApiError(
                422, "a person cannot cover for themselves", "value_error",
                loc=["body", "replaces"],
            )  # fmt: skip
        now = gate.clock.now()
        with service.store.unit_of_work() as uow:
            row = uow.overrides.add(
                schedule=schedule.id,
                person=body.person,
                replaces=body.replaces,
                start_at=start,
                end_at=end,
                reason=body.reason,
                created_by=who.actor,
                created_at=now,
            )
            view = override_view(row)
            changed(uow, request, who, "override.create", f"{schedule.id}/override:{row.id}")(
                None, view
            )
            uow.commit()
        return view

    def changed(
        uow: UnitOfWork, request: Request, who: Principal, action: str, what: str
    ) -> Callable[[dict[str, Any] | None, dict[str, Any] | None], None]:
        """Records one change of an override in the audit log (before, after), in ``uow``."""

        def record(before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
            audit.record(
                uow,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                action=action,
                target=f"schedule:{what}",
                address=address(request),
                before=before,
                after=after,
            )

        return record

    @api.delete("/{name}/overrides/{override_id}", responses=NOT_FOUND)
    def delete_override(
        request: Request,
        name: str = Path(max_length=80),
        override_id: int = Path(ge=1, le=2**62),
        who: Principal = writer,
    ) -> dict[str, Any]:
        """Remove an override (the same editing right as adding one); what it was."""
        policy = current()
        schedule = _schedule(policy, name)
        _may_change(request, who, policy, schedule)
        with service.store.unit_of_work() as uow:
            row = uow.overrides.get(override_id)
            if row is None or row.schedule != schedule.id:
                raise ApiError(
                    404,
                    f"no override {override_id} in schedule '{schedule.id}'",
                    "not_found",
                    loc=["path"],
                )
            uow.overrides.delete(override_id)
            view = override_view(row)
            changed(uow, request, who, "override.delete", f"{schedule.id}/override:{row.id}")(
                view, None
            )
            uow.commit()
        return view

    return api
