"""Policy versions at run time: the active one (with its router) and the versions
escalations pinned when they started."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from escalade.escalation.kinds import SYSTEM
from escalade.policy.models import Policy
from escalade.routing.router import Router
from escalade.service.errors import ActionRefused, NotFound
from escalade.service.handoffs import schedule_handoffs
from escalade.store import UnitOfWork


@dataclass
class ActivePolicy:
    version_id: int
    policy: Policy
    router: Router


@dataclass
class PolicyBook:
    """The active policy and a cache of pinned versions (policies never change once
    stored, so a version is parsed once per process)."""

    active: ActivePolicy | None = None
    _pinned: dict[int, Policy] = field(default_factory=dict)

    def apply(
        self,
        uow: UnitOfWork,
        policy: Policy,
        now: datetime,
        *,
        router: Router | None = None,
        by: str = SYSTEM,
    ) -> int:
        """Store a policy version (deduplicated by content hash) in ``uow``, arm its
        schedules' hand-offs and make it active (once ``uow`` commits, the caller's part)."""
        content = policy.model_dump_json(by_alias=True)
        row = uow.policies.add(name=policy.id, content=content, applied_by=by, at=now)
        uow.policies.activate(row.id, by=by, at=now)  # active for every process, once committed
        schedule_handoffs(uow, row.id, policy, now)
        self._pinned[row.id] = policy
        self.active = ActivePolicy(row.id, policy, router or Router(policy))
        return row.id

    def pinned(self, uow: UnitOfWork, version_id: int) -> Policy:
        """The policy version an escalation started with."""
        if version_id not in self._pinned:
            row = uow.policies.get(version_id)
            if row is None:
                raise NotFound(f"policy version {version_id} is missing")
            self._pinned[version_id] = Policy.model_validate_json(row.content)
        return self._pinned[version_id]

    def take_up(self, uow: UnitOfWork) -> ActivePolicy | None:
        """Make the version active in the store (another process may have applied it)
        the active one here too; the new active policy, or None when nothing changed."""
        version_id = uow.policies.active_id()
        current = self.active
        if version_id is None or (current is not None and current.version_id == version_id):
            return None
        policy = self.pinned(uow, version_id)
        self.active = ActivePolicy(version_id, policy, Router(policy))
        return self.active

    def require_active(self) -> ActivePolicy:
        if self.active is None:
            raise ActionRefused("no policy applied yet")
        return self.active
