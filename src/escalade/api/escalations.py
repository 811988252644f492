"""Escalations over HTTP: create, list, read with the timeline, act; alerts and activity.

Views are thin: they parse, call the escalation service, and map its refusals to HTTP
answers (404 unknown, 409 not allowed now, 422 bad input)."""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from escalade.api.errors import ApiError
from escalade.escalation.lifecycle import Action
from escalade.escalation.snapshot import Snapshot
from escalade.routing.models import EscalationInput
from escalade.service import ActionRefused, AlertIn, EscalationService, NotFound
from escalade.store.rows import EscalationRow, TimelineEntry

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
    by: str = Field("api", min_length=1, max_length=200, description="Who raises it")

    @field_validator("ref")
    @classmethod
    def _ref_pattern(cls, value: str | None) -> str | None:
        if value is not None and not REF_PATTERN.fullmatch(value):
            raise ValueError(f"'{value[:80]}' is not a ref: a ref is {REF_RULE}")
        return value


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    by: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(None, max_length=2000)
    to: str | None = Field(None, max_length=200, description="Level, team or person")
    text: str | None = Field(None, max_length=20000)


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


def timeline_view(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "at": _iso(entry.at),
        "type": entry.kind,
        "actor": entry.actor,
        **({"reason": entry.reason} if entry.reason else {}),
        **entry.data,
    }


def escalation_router(service: EscalationService, wake: Any = None) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["escalations"])

    def _woken() -> None:
        if wake is not None:
            wake()

    @api.post("/escalations", status_code=201)
    def create(body: CreateEscalation) -> dict[str, Any]:
        """Raise an escalation: routed, stored, notified, clocks started."""
        inp = EscalationInput.model_validate(
            body.model_dump(exclude={"ref", "by"}, exclude_unset=True)
        )
        try:
            esc = service.create(inp, by=body.by, ref=body.ref)
        except ActionRefused as exc:
            about_ref = body.ref is not None and body.ref in str(exc)
            raise ApiError(409, str(exc), loc=["body", "ref"] if about_ref else ["body"]) from None
        _woken()
        return escalation_view(esc)

    @api.get("/escalations")
    def list_escalations(
        state: list[str] | None = Query(None, description="open, acknowledged, …"),
        team: str | None = Query(None, max_length=200),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000_000),
    ) -> list[dict[str, Any]]:
        with service.store.unit_of_work(readonly=True) as uow:
            rows = uow.escalations.find(states=state, team=team, limit=limit, offset=offset)
        return [escalation_view(e) for e in rows]

    @api.get("/escalations/{ref}")
    def read(ref: str) -> dict[str, Any]:
        """An escalation with its complete timeline."""
        with service.store.unit_of_work(readonly=True) as uow:
            esc = uow.escalations.get_by_ref(ref)
            if esc is None:
                raise ApiError(404, f"no escalation '{ref}'", loc=["path", "ref"])
            entries = uow.timeline.for_escalation(esc.id)
        return {**escalation_view(esc), "timeline": [timeline_view(t) for t in entries]}

    @api.post("/escalations/{ref}/actions")
    def act(ref: str, body: ActionIn) -> dict[str, Any]:
        """Acknowledge, investigate, escalate, de-escalate, reassign, resolve, reopen, close,
        comment, customer_reply or waiting_on_customer."""
        try:
            esc = service.act(
                ref, body.action, by=body.by, reason=body.reason, to=body.to, text=body.text
            )
        except NotFound as exc:
            raise ApiError(404, str(exc), loc=["path", "ref"]) from None
        except ActionRefused as exc:
            raise ApiError(409, str(exc), loc=["body", "action"]) from None
        _woken()
        return escalation_view(esc)

    @api.post("/alerts")
    def alert(body: AlertBody) -> dict[str, Any]:
        """A monitoring alert: its key creates, updates or resolves one escalation."""
        esc = service.receive_alert(AlertIn(**body.model_dump()))
        _woken()
        return {"escalation": escalation_view(esc) if esc else None}

    @api.post("/activity")
    def activity(body: ActivityBody) -> dict[str, Any]:
        """Product activity that threshold triggers count."""
        created = service.record_activity(actor=body.actor, action=body.action, count=body.count)
        _woken()
        return {"created": [escalation_view(e) for e in created]}

    return api
