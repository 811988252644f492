"""Escalations over HTTP: create, list, read with the timeline, act, authority actions;
alerts and activity.

Views are thin: they authenticate (``Gate``), parse, call the escalation service, record
the change in the audit log in the same transaction, and map refusals to HTTP answers
(404 unknown or hidden, 409 not allowed now, 403 refused by the authority matrix, 422 bad
input). A confidential escalation the caller may not see is answered exactly as a
missing one (404), in every endpoint."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from escalade.api.errors import CONFLICT, INTAKE, NOT_FOUND, PROTECTED, ApiError, Hidden
from escalade.api.security import Gate, address
from escalade.auth import audit
from escalade.auth.authority import AuthorityDecision, UnknownAction, decide
from escalade.auth.scopes import Principal, Scope
from escalade.auth.visibility import hidden_categories, may_see
from escalade.escalation.kinds import EventKind
from escalade.escalation.lifecycle import Action
from escalade.escalation.snapshot import Snapshot
from escalade.policy import Policy
from escalade.routing.models import EscalationInput
from escalade.service import ActionRefused, AlertIn, EscalationService, NotFound
from escalade.service.escalations import RETRIES
from escalade.store import ConcurrentUpdate, TransientConflict, UnitOfWork
from escalade.store.rows import EscalationRow, NewAuditEntry, TimelineEntry

MAX_PAGE_SCANS = 10

# A ref is an id in URLs and logs: 1–64 letters, digits, '.', '_', ':' or '-', starting
# with a letter or a digit (docs/api.md).
REF_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
REF_RULE = "1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"


class CreateEscalation(EscalationInput):
    ref: str | None = Field(
        None,
        max_length=64,
        description=f"Your own id (default ESC-<n>): {REF_RULE}",
        json_schema_extra={"pattern": REF_PATTERN.pattern},
    )
    by: str = Field("api", min_length=1, max_length=200, description="Who raises it (keys only)")

    @field_validator("ref")
    @classmethod
    def _ref_pattern(cls, value: str | None) -> str | None:
        if value is not None and not REF_PATTERN.fullmatch(value):
            raise ValueError(f"'{value[:80]}' is not a ref: a ref is {REF_RULE}")
        return value


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    by: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Who acts (keys only; a signed-in person always acts as themselves)",
    )
    reason: str | None = Field(None, max_length=2000)
    to: str | None = Field(None, max_length=200, description="Level, team or person")
    text: str | None = Field(None, max_length=20000)
    category: str | None = Field(
        None, min_length=1, max_length=200, description="The new category (recategorise)"
    )


class AuthorityActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: str = Field(
        min_length=1, max_length=120, description="An action of the policy's authority matrix"
    )
    amount: float | None = Field(
        None, ge=0, le=1e15, allow_inf_nan=False, description="For actions with amount bands"
    )
    acting_as: str | None = Field(
        None, alias="as", max_length=80, description="One of your teams or roles"
    )
    note: str | None = Field(None, max_length=2000)


class AlertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field("api", min_length=1, max_length=80)
    key: str = Field(min_length=1, max_length=250)
    status: Literal["firing", "resolved"] = "firing"
    severity: str | None = Field(None, max_length=80)
    summary: str = Field("", max_length=2000)
    description: str = Field("", max_length=100_000)


class ActivityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=120)
    count: int = Field(1, ge=1, le=1_000_000)


class _Refused(Exception):
    """The authority matrix refused an action (answered 403 after the unit of work)."""

    def __init__(self, verdict: AuthorityDecision):
        super().__init__(verdict.reason)
        self.verdict = verdict


R = TypeVar("R")


def _retrying(attempt: Callable[[], R]) -> R:
    """Run a unit of work this module owns again when it lost a race (an escalation it
    touches changed under it, or the database gave it up over a deadlock or serialization
    failure), as the service does for the units of work it owns (it does not retry a
    caller's). A race lost every time propagates: answered 503 'busy' with Retry-After."""
    for attempt_no in range(1, RETRIES + 1):
        try:
            return attempt()
        except (ConcurrentUpdate, TransientConflict):
            if attempt_no == RETRIES:
                raise
            time.sleep(random.uniform(0, 0.005 * 2**attempt_no))  # jitter: let it settle
    raise AssertionError("unreachable")


def _iso(t: Any) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t is not None else None


def escalation_view(e: EscalationRow) -> dict[str, Any]:
    return {
        "ref": e.ref,
        "state": e.state,
        "subject": e.subject,
        "category": e.category,
        "team": e.team,
        "level": e.level,
        "priority": e.priority,
        "owner": e.owner,
        "customer": e.customer,
        "created_at": _iso(e.created_at),
        "updated_at": _iso(e.updated_at),
        "acknowledged_at": _iso(e.acknowledged_at),
        "resolved_at": _iso(e.resolved_at),
        "closed_at": _iso(e.closed_at),
        "policy_version": e.policy_version_id,
        "decision": Snapshot.of(e.snapshot).decision.raw,
    }


def hidden_view(e: EscalationRow) -> dict[str, Any]:
    """What an intake or a creator who may not see it learns: that it was accepted."""
    return {"ref": e.ref, "confidential": True}


def _audit_state(e: EscalationRow) -> dict[str, Any]:
    """An escalation's state for the audit log (no customer data)."""
    return {
        "state": e.state,
        "team": e.team,
        "level": e.level,
        "priority": e.priority,
        "owner": e.owner,
        "category": e.category,
    }


def timeline_view(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "at": _iso(entry.at),
        "type": entry.kind,
        "actor": entry.actor,
        **({"reason": entry.reason} if entry.reason else {}),
        **entry.data,
    }


@dataclass
class Sight:
    """Who may see which escalation (confidentiality), for every endpoint that names one."""

    service: EscalationService

    def policies(self, uow: UnitOfWork, esc: EscalationRow) -> list[Policy]:
        pinned = self.service.pinned(uow, esc.policy_version_id)
        active = self.service.active.policy if self.service.active else None
        return [pinned] if active is None or active is pinned else [pinned, active]

    def sees(self, uow: UnitOfWork, who: Principal, esc: EscalationRow) -> bool:
        return may_see(
            who,
            team=esc.team,
            category=esc.category,
            snapshot=esc.snapshot,
            policies=self.policies(uow, esc),
        )

    def view_for(self, who: Principal, esc: EscalationRow) -> dict[str, Any]:
        with self.service.store.unit_of_work(readonly=True) as uow:
            return escalation_view(esc) if self.sees(uow, who, esc) else hidden_view(esc)

    def visible(self, uow: UnitOfWork, who: Principal, ref: str) -> EscalationRow:
        """The escalation, or 404 if it is missing or hidden from ``who`` (the same
        answer; ``Hidden`` lets the caller record the hidden case once its unit of work
        is over, with ``record_hidden``)."""
        esc = uow.escalations.get_by_ref(ref)
        if esc is None:
            raise ApiError(404, f"no escalation '{ref}'", "not_found", loc=["path", "ref"])
        if not self.sees(uow, who, esc):
            raise Hidden(404, f"no escalation '{ref}'", "not_found", loc=["path", "ref"])
        return esc

    def record_hidden(self, request: Request, who: Principal, ref: str) -> None:
        audit.refusal(
            self.service.store,
            at=self.service.clock.now(),
            who=who,
            action=f"{request.method} {request.url.path}",
            target=f"escalation:{ref}",
            address=address(request),
            detail="404 hidden: confidential, not visible to the caller",
        )


def escalation_router(service: EscalationService, gate: Gate, wake: Any = None) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["escalations"], responses=PROTECTED)
    reader = Depends(gate.require(Scope.read))
    writer = Depends(gate.require(Scope.write))
    intake = Depends(gate.require(Scope.intake))

    def _woken() -> None:
        if wake is not None:
            wake()

    sight = Sight(service)
    _sees = sight.sees
    _view_for = sight.view_for
    _visible = sight.visible
    _record_hidden = sight.record_hidden

    def _actor(who: Principal, by: str | None) -> str:
        """On the timeline: a key names the person it acts for; a person is themselves."""
        if who.kind == "key":
            return by or who.actor
        return who.name

    def _recategorise_refusal(who: Principal) -> AuthorityDecision | None:
        """Re-categorising needs the write scope; where the active policy's authority
        matrix has a ``recategorise`` action, also a hat that matrix allows: the refusal
        naming the rule, or None."""
        active = service.active
        if active is None or not any(
            a.id == Action.recategorise.value for a in active.policy.authority.actions
        ):
            return None
        verdict = decide(active.policy, who, Action.recategorise.value)
        return None if verdict.allowed else verdict

    @api.post("/escalations", status_code=201, responses=CONFLICT)
    def create(body: CreateEscalation, request: Request, who: Principal = writer) -> dict[str, Any]:
        """Raise an escalation: routed, stored, notified, clocks started."""
        inp = EscalationInput.model_validate(
            body.model_dump(exclude={"ref", "by"}, exclude_unset=True)
        )
        actor = _actor(who, body.by if "by" in body.model_fields_set else None)
        now = service.clock.now()

        def attempt() -> EscalationRow:
            with service.store.unit_of_work() as uow:
                esc = service.create(inp, by=actor, ref=body.ref, uow=uow)
                audit.record(
                    uow,
                    at=now,
                    actor=who.actor,
                    actor_kind=who.kind,
                    action="escalation.create",
                    target=f"escalation:{esc.ref}",
                    address=address(request),
                    after=_audit_state(esc),
                )
                uow.commit()
                return esc

        try:
            esc = _retrying(attempt)
        except ActionRefused as exc:
            audit.refusal(
                service.store,
                at=now,
                who=who,
                action="escalation.create",
                target=f"escalation:{body.ref or '?'}",
                address=address(request),
                detail=f"409: {exc}",
            )
            about_ref = body.ref is not None and body.ref in str(exc)
            loc = ["body", "ref"] if about_ref else ["body"]
            raise ApiError(409, str(exc), "conflict", loc=loc) from None
        _woken()
        return _view_for(who, esc)

    @api.get("/escalations")
    def list_escalations(
        response: Response,
        state: list[str] | None = Query(None, description="open, acknowledged, …"),
        team: str | None = Query(None, max_length=200),
        category: str | None = Query(None, max_length=80),
        priority: str | None = Query(None, max_length=80),
        limit: int = Query(100, ge=1, le=1000),
        cursor: str | None = Query(
            None,
            pattern=r"^[0-9]{1,18}$",
            description="The X-Next-Cursor of the page before (newest first)",
        ),
        who: Principal = reader,
    ) -> list[dict[str, Any]]:
        """Escalations newest first, filtered, that the caller may see. When more may
        follow, the ``X-Next-Cursor`` header holds the ``cursor`` of the next page."""
        policy = service.active.policy if service.active else None
        hidden = hidden_categories(policy, who) if policy else set()
        before = int(cursor) if cursor else None
        out: list[dict[str, Any]] = []
        next_cursor: int | None = None
        with service.store.unit_of_work(readonly=True) as uow:
            for _ in range(MAX_PAGE_SCANS):
                batch = limit - len(out)
                rows = uow.escalations.find(
                    states=state,
                    team=team,
                    category=category,
                    priority=priority,
                    limit=batch,
                    before_id=before,
                    teams=who.limited_to,
                    hidden_categories=hidden,
                    unless_teams=who.teams,
                )
                out.extend(escalation_view(e) for e in rows if _sees(uow, who, e))
                if len(rows) < batch:  # nothing older
                    next_cursor = None
                    break
                before = next_cursor = rows[-1].id
                if len(out) >= limit:
                    break
        if next_cursor is not None:
            response.headers["X-Next-Cursor"] = str(next_cursor)
        return out

    @api.get("/escalations/{ref}", responses=NOT_FOUND)
    def read(ref: str, request: Request, who: Principal = reader) -> dict[str, Any]:
        """An escalation with its complete timeline."""
        try:
            with service.store.unit_of_work(readonly=True) as uow:
                esc = _visible(uow, who, ref)
                entries = uow.timeline.for_escalation(esc.id)
        except Hidden:
            _record_hidden(request, who, ref)
            raise
        return {**escalation_view(esc), "timeline": [timeline_view(t) for t in entries]}

    @api.post("/escalations/{ref}/actions", responses={**NOT_FOUND, **CONFLICT})
    def act(ref: str, body: ActionIn, request: Request, who: Principal = writer) -> dict[str, Any]:
        """Acknowledge, investigate, escalate, de-escalate, reassign, resolve, reopen, close,
        comment, customer_reply, waiting_on_customer or recategorise (with ``category``)."""
        now = service.clock.now()

        def attempt() -> EscalationRow:
            with service.store.unit_of_work() as uow:
                before = _visible(uow, who, ref)
                if body.action == Action.recategorise:
                    refusal = _recategorise_refusal(who)
                    if refusal is not None:
                        raise _Refused(refusal)
                esc = service.act(
                    ref,
                    body.action,
                    by=_actor(who, body.by),
                    reason=body.reason,
                    to=body.to,
                    text=body.text,
                    uow=uow,
                    category=body.category,
                )
                audit.record(
                    uow,
                    at=now,
                    actor=who.actor,
                    actor_kind=who.kind,
                    action=f"escalation.{body.action.value}",
                    target=f"escalation:{ref}",
                    address=address(request),
                    before=_audit_state(before),
                    after=_audit_state(esc),
                )
                uow.commit()
                return esc

        try:
            esc = _retrying(attempt)
        except Hidden:
            _record_hidden(request, who, ref)
            raise
        except NotFound as exc:
            raise ApiError(404, str(exc), "not_found", loc=["path", "ref"]) from None
        except _Refused as exc:  # audited after the unit of work (SQLite has one writer)
            audit.refusal(
                service.store,
                at=now,
                who=who,
                action=f"escalation.{body.action.value}",
                target=f"escalation:{ref}",
                address=address(request),
                detail=f"403: {exc.verdict.reason}",
            )
            raise ApiError(
                403,
                exc.verdict.reason,
                "authority_refused",
                loc=["body", "action"],
                rule=exc.verdict.rule,
            ) from None
        except ActionRefused as exc:
            audit.refusal(
                service.store,
                at=now,
                who=who,
                action=f"escalation.{body.action.value}",
                target=f"escalation:{ref}",
                address=address(request),
                detail=f"409: {exc}",
            )
            raise ApiError(409, str(exc), "conflict", loc=["body", "action"]) from None
        _woken()
        return _view_for(who, esc)

    @api.post("/escalations/{ref}/authority-actions", responses=NOT_FOUND)
    def authority_action(
        ref: str, body: AuthorityActionIn, request: Request, who: Principal = writer
    ) -> dict[str, Any]:
        """Take an action of the policy's authority matrix (password reset, refunds by
        amount, disabling 2FA, suspending, banning, releasing escrow, deploys, feature
        flags …) on an escalation. Checked against the active policy's matrix: a refusal
        is 403 naming the rule that refused it; allowed or refused, it goes on the
        escalation's timeline and in the audit log."""
        active = service.active
        if active is None:
            raise ApiError(409, "no policy applied yet", "conflict")
        policy = active.policy
        try:
            verdict = decide(policy, who, body.action, amount=body.amount, acting_as=body.acting_as)
        except UnknownAction:
            known = ", ".join(a.id for a in policy.authority.actions) or "none"
            raise ApiError(
                422,
                f"'{body.action}' is not an action of the authority matrix ({known})",
                "unknown_action",
                loc=["body", "action"],
            ) from None
        action = next(a for a in policy.authority.actions if a.id == verdict.action)
        if action.bands and body.amount is None:
            raise ApiError(
                422,
                f"'{action.name or action.id}' depends on the amount: give 'amount'",
                "missing",
                loc=["body", "amount"],
            )
        now = service.clock.now()
        data = {
            "action": verdict.action,
            "rule": verdict.rule,
            **({"amount": body.amount} if body.amount is not None else {}),
            **({"acting_as": verdict.acting_as} if verdict.acting_as else {}),
            **({"note": body.note} if body.note else {}),
            "policy_version": active.version_id,
        }
        try:
            with service.store.unit_of_work() as uow:
                esc = _visible(uow, who, ref)
                uow.timeline.append(
                    esc.id,
                    at=now,
                    actor=who.actor if who.kind == "key" else who.name,
                    kind=(
                        EventKind.authority_allowed
                        if verdict.allowed
                        else EventKind.authority_refused
                    ).value,
                    reason=verdict.reason,
                    data=data,
                )
                audit.record(
                    uow,
                    at=now,
                    actor=who.actor,
                    actor_kind=who.kind,
                    action=f"authority.{verdict.action}",
                    target=f"escalation:{ref}",
                    outcome="ok" if verdict.allowed else "refused",
                    address=address(request),
                    after=data,
                    detail=verdict.reason,
                )
                uow.commit()
        except Hidden:
            _record_hidden(request, who, ref)
            raise
        if not verdict.allowed:
            raise ApiError(
                403,
                verdict.reason,
                "authority_refused",
                loc=["body", "action"],
                rule=verdict.rule,
            )
        return {"allowed": True, "reason": verdict.reason, **data}

    @api.post("/alerts", responses=INTAKE)
    def alert(body: AlertBody, request: Request, who: Principal = intake) -> dict[str, Any]:
        """A monitoring alert: its key creates, updates or resolves one escalation."""
        at = service.clock.now()

        def entry(esc: EscalationRow | None) -> NewAuditEntry:
            return NewAuditEntry(
                at=at,
                actor=who.actor,
                actor_kind=who.kind,
                action=f"alert.{body.status}",
                target=f"escalation:{esc.ref}" if esc else f"alert:{body.source}",
                address=address(request),
                after=_audit_state(esc) if esc else None,
            )

        # the audit entry commits with the alert's change, in one unit of work
        esc = service.receive_alert(AlertIn(**body.model_dump()), audit=entry)
        _woken()
        return {"escalation": _view_for(who, esc) if esc else None}

    @api.post("/activity", responses=INTAKE)
    def activity(body: ActivityBody, request: Request, who: Principal = intake) -> dict[str, Any]:
        """Product activity that threshold triggers count."""
        at = service.clock.now()

        def entry(created: list[EscalationRow]) -> NewAuditEntry:
            return NewAuditEntry(
                at=at,
                actor=who.actor,
                actor_kind=who.kind,
                action="activity.record",
                target=f"activity:{body.action}",
                address=address(request),
                after={"count": body.count, "created": [e.ref for e in created]},
            )

        # the audit entry commits with the activity and what it created, in one unit of work
        created = service.record_activity(
            actor=body.actor, action=body.action, count=body.count, audit=entry
        )
        _woken()
        return {"created": [_view_for(who, e) for e in created]}

    return api
