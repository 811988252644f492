"""Policies over HTTP: the active one, its versions, validating a text, applying a new
version (admins only: who may edit policies is an editing right; every refused attempt is
audited), and the difference between two versions.

Applying a version makes it active in this process at once and records it in the
database as the active version; every other API process takes it up within a second (at
its next request; see docs/auth.md, "Several processes")."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

import yaml
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from escalade.api.errors import NOT_FOUND, PROTECTED, ApiError
from escalade.api.security import Gate, address
from escalade.auth import audit
from escalade.auth.editing import may_edit
from escalade.auth.scopes import Principal, Scope
from escalade.policy import Policy, PolicyInvalid, policy_from_text
from escalade.service import EscalationService
from escalade.store.rows import PolicyVersionRow

MAX_POLICY_CHARS = 2_000_000


class PolicyText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(
        min_length=1, max_length=MAX_POLICY_CHARS, description="The policy, as YAML"
    )


def version_view(row: PolicyVersionRow, active: int | None) -> dict[str, Any]:
    return {
        "version": row.id,
        "name": row.name,
        "content_hash": row.content_hash,
        "applied_by": row.applied_by,
        "applied_at": row.applied_at.isoformat().replace("+00:00", "Z"),
        "active": row.id == active,
    }


def _problems(exc: PolicyInvalid) -> list[dict[str, Any]]:
    return [
        {
            "loc": ["body", "content"],
            "field": "content",
            "msg": p.message,
            "type": "policy_invalid",
            "line": p.position.line,
            "col": p.position.col,
        }
        for p in exc.problems
    ]


def _trim(value: Any) -> Any:
    """Without the values left at their empty defaults (None, [], {}), as a person wrote it."""
    if isinstance(value, dict):
        kept = {k: _trim(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_trim(v) for v in value]
    return value


def _as_yaml(content: str) -> list[str]:
    text = yaml.safe_dump(_trim(json.loads(content)), sort_keys=False, allow_unicode=True)
    return text.splitlines(keepends=True)


def policy_router(
    gate: Gate, service: EscalationService | None, current: Callable[[], Policy]
) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["policy"], responses=PROTECTED)
    reader = Depends(gate.require(Scope.read))
    writer = Depends(gate.require(Scope.write))

    @api.get("/policy")
    def get_policy(who: Principal = reader) -> dict[str, Any]:
        """The active policy."""
        return current().model_dump(mode="json", by_alias=True, exclude_none=True)

    @api.post("/policies/validate")
    def validate(body: PolicyText, who: Principal = reader) -> dict[str, Any]:
        """Check a policy text: every problem with its line and column (nothing stored)."""
        try:
            policy = policy_from_text(body.content, "<posted>")
        except PolicyInvalid as exc:
            return {"valid": False, "problems": _problems(exc)}
        return {"valid": True, "id": policy.id, "problems": []}

    if service is None:
        return api

    def _active() -> int | None:
        return service.active.version_id if service.active else None

    @api.get("/policies")
    def versions(who: Principal = reader) -> list[dict[str, Any]]:
        """Every policy version ever applied, oldest first."""
        with service.store.unit_of_work(readonly=True) as uow:
            rows = uow.policies.history()
        return [version_view(r, _active()) for r in rows]

    def _version(version: int) -> PolicyVersionRow:
        with service.store.unit_of_work(readonly=True) as uow:
            row = uow.policies.get(version)
        if row is None:
            raise ApiError(404, f"no policy version {version}", "not_found", loc=["path"])
        return row

    @api.get("/policies/diff", responses=NOT_FOUND)
    def diff(
        from_: int = Query(alias="from", ge=1, le=2**62),
        to: int = Query(ge=1, le=2**62),
        who: Principal = reader,
    ) -> dict[str, Any]:
        """What changed between two versions, as a unified diff of their YAML."""
        a, b = _version(from_), _version(to)
        lines = difflib.unified_diff(
            _as_yaml(a.content), _as_yaml(b.content), f"version {a.id}", f"version {b.id}"
        )
        return {"from": a.id, "to": b.id, "diff": "".join(lines)}

    @api.get("/policies/{version}", responses=NOT_FOUND)
    def version(version: int = Path(ge=1, le=2**62), who: Principal = reader) -> dict[str, Any]:
        """One version, with its content."""
        row = _version(version)
        return {**version_view(row, _active()), "policy": json.loads(row.content)}

    @api.post("/policies", status_code=201, responses={422: PROTECTED[422]})
    def apply(body: PolicyText, request: Request, who: Principal = writer) -> dict[str, Any]:
        """Apply a new policy version (admins, and the roles the active policy's
        ``editing.policies`` names). Escalations in flight keep the version they started
        with."""
        right = may_edit(current(), who, "policies")
        if not right.allowed:
            raise gate.refuse(
                request,
                403,
                right.reason,
                "forbidden",
                who,
                loc=["body", "content"],
                right="edit_policy",
            )
        try:
            policy = policy_from_text(body.content, "<posted>")
        except PolicyInvalid as exc:
            raise ApiError.many(422, _problems(exc)) from None
        before = _active()
        version_id = service.apply_policy(policy, by=who.actor)
        with service.store.unit_of_work() as uow:
            audit.record(
                uow,
                at=gate.clock.now(),
                actor=who.actor,
                actor_kind=who.kind,
                action="policy.apply",
                target=f"policy:{policy.id}",
                address=address(request),
                before={"version": before},
                after={"version": version_id},
            )
            uow.commit()
        with service.store.unit_of_work(readonly=True) as uow:
            row = uow.policies.get(version_id)
        assert row is not None
        return version_view(row, _active())

    return api
