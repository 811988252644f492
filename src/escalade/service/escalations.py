"""``EscalationService``: the one door to the use cases. Each public method runs its use
case in a unit of work of its own (or the caller's, given as ``uow``) and commits it."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from escalade.clock import Clock
from escalade.errors import IntegrityViolation
from escalade.escalation.kinds import SYSTEM, EventKind
from escalade.escalation.lifecycle import Action
from escalade.oncall.schedule import Override
from escalade.policy.models import Policy
from escalade.routing.models import EscalationInput
from escalade.routing.router import Router
from escalade.service.act import Act
from escalade.service.activity import RecordActivity
from escalade.service.alerts import AlertIn, ReceiveAlert
from escalade.service.create import Create
from escalade.service.effects import Effects
from escalade.service.errors import ActionRefused
from escalade.service.oncall import OverridesInForce
from escalade.service.policies import ActivePolicy, PolicyBook
from escalade.service.timers import fire
from escalade.store import ConcurrentUpdate, Store, TransientConflict, UnitOfWork
from escalade.store.rows import EscalationRow, NewAuditEntry, TimerRow

T = TypeVar("T")
RETRIES = 5
"""Attempts of a use case whose unit of work lost a race before the error is raised."""


@dataclass
class EscalationService:
    store: Store
    clock: Clock
    overrides: dict[str, list[Override]] = field(default_factory=dict)
    book: PolicyBook = field(default_factory=PolicyBook)
    policy_check_every: float = 1.0
    """Seconds between two looks at which policy version is active in the store
    (``refresh_policy``): a version applied by another process is taken up this soon."""
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    """The clock of those looks (seconds; only differences count)."""
    wake: Callable[[], None] | None = None
    """Told after each unit of work the service commits itself (the in-process engine's
    ``wake``: it runs a pass only if the work made something due sooner than it planned)."""

    def __post_init__(self) -> None:
        self._policy_checked = -math.inf
        self._policy_checking = threading.Lock()
        self._create = Create(self.book, self.clock)
        self._act = Act(self.book)
        self._alert = ReceiveAlert(self.book, self.clock, self._create, self._act)
        self._activity = RecordActivity(self.book, self.clock, self._create)

    @property
    def active(self) -> ActivePolicy | None:
        """The active policy version and its router (None before ``apply_policy``)."""
        return self.book.active

    def overrides_in_force(self, uow: UnitOfWork) -> OverridesInForce:
        """The on-call overrides for use cases in ``uow``: the stored ones (made over the
        API) and ``self.overrides`` (made in this process, e.g. by a scenario)."""
        return OverridesInForce(uow, self.overrides, self.clock.now())

    @contextmanager
    def _effects(self, uow: UnitOfWork | None) -> Iterator[Effects]:
        if uow is not None:
            yield Effects(uow, self.overrides_in_force(uow))
            return
        with self.store.unit_of_work() as fresh:
            yield Effects(fresh, self.overrides_in_force(fresh))
            fresh.commit()

    def _run(self, uow: UnitOfWork | None, use_case: Callable[[Effects], T]) -> T:
        """Run a use case in the caller's unit of work, or in its own: then a unit of work
        that lost a race (an escalation changed under it, a deadlock or serialization
        failure the database resolved by giving it up) is run again from the start."""
        if uow is not None:
            return use_case(Effects(uow, self.overrides_in_force(uow)))
        for attempt in range(1, RETRIES + 1):
            try:
                with self._effects(None) as fx:
                    result = use_case(fx)
                if self.wake is not None:
                    self.wake()
                return result
            except (ConcurrentUpdate, TransientConflict):
                if attempt == RETRIES:
                    raise
                time.sleep(random.uniform(0, 0.005 * 2**attempt))  # jitter: let it settle
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ policy versions

    def apply_policy(
        self, policy: Policy, *, router: Router | None = None, by: str = SYSTEM
    ) -> int:
        """Store a policy version (deduplicated by content hash) and make it active."""
        with self.store.unit_of_work() as uow:
            version = self.book.apply(uow, policy, self.clock.now(), router=router, by=by)
            uow.commit()
        return version

    def refresh_policy(self) -> ActivePolicy | None:
        """Take up a policy version another process made active (``POST /v1/policies``
        there): at most one one-row read per ``policy_check_every`` seconds, so it can be
        called on every request. The new active policy, or None when nothing changed."""
        now = self.monotonic()
        if now - self._policy_checked < self.policy_check_every:
            return None
        if not self._policy_checking.acquire(blocking=False):
            return None  # another thread is looking right now
        try:
            self._policy_checked = now
            with self.store.unit_of_work(readonly=True) as uow:
                return self.book.take_up(uow)
        finally:
            self._policy_checking.release()

    def pinned(self, uow: UnitOfWork, version_id: int) -> Policy:
        """The policy version an escalation started with."""
        return self.book.pinned(uow, version_id)

    # ------------------------------------------------------------------ use cases

    def create(
        self,
        inp: EscalationInput,
        *,
        by: str = "api",
        ref: str | None = None,
        parent_id: int | None = None,
        cause: str | None = None,
        extra_reasons: Sequence[str] = (),
        uow: UnitOfWork | None = None,
    ) -> EscalationRow:
        """Route, store, notify and start the clocks of a new escalation."""
        self.book.require_active()
        try:
            return self._run(
                uow,
                lambda fx: self._create(
                    fx,
                    inp,
                    by=by,
                    ref=ref,
                    parent_id=parent_id,
                    cause=cause,
                    extra_reasons=extra_reasons,
                ),
            )
        except IntegrityViolation:
            if ref is not None and self._ref_taken(ref):
                raise ActionRefused(f"an escalation named '{ref}' already exists") from None
            raise

    def act(
        self,
        ref: str,
        action: Action | str,
        *,
        by: str,
        reason: str | None = None,
        to: str | None = None,
        text: str | None = None,
        uow: UnitOfWork | None = None,
        category: str | None = None,
    ) -> EscalationRow:
        """A person (or the system) acts on an escalation; refused with a reason if invalid."""
        action = Action(action)
        now = self.clock.now()
        return self._run(
            uow,
            lambda fx: self._act(
                fx, ref, action, by=by, now=now, reason=reason, to=to, text=text, category=category
            ),
        )

    def receive_alert(
        self,
        alert: AlertIn,
        *,
        audit: Callable[[EscalationRow | None], NewAuditEntry] | None = None,
        uow: UnitOfWork | None = None,
    ) -> EscalationRow | None:
        """Create, update or resolve the one escalation of an alert's deduplication key.
        ``audit`` makes the audit entry of the outcome, written in the same unit of work
        (the change and its entry commit together, or neither); with ``uow`` the work is
        done in the caller's unit of work, which the caller commits."""
        self.book.require_active()

        def use_case(fx: Effects) -> EscalationRow | None:
            esc = self._alert(fx, alert)
            if audit is not None:
                fx.audit(audit(esc))
            return esc

        return self._run(uow, use_case)

    def record_activity(
        self,
        *,
        actor: str,
        action: str,
        count: int = 1,
        ref: str | None = None,
        audit: Callable[[list[EscalationRow]], NewAuditEntry] | None = None,
    ) -> list[EscalationRow]:
        """Store product activity and fire the threshold triggers it crosses. ``audit``
        makes the audit entry (of the escalations created), written in the same unit of
        work."""
        self.book.require_active()

        def use_case(fx: Effects) -> list[EscalationRow]:
            created = self._activity(fx, actor=actor, action=action, count=count, ref=ref)
            if audit is not None:
                fx.audit(audit(created))
            return created

        return self._run(None, use_case)

    def _ref_taken(self, ref: str) -> bool:
        with self.store.unit_of_work(readonly=True) as uow:
            return uow.escalations.get_by_ref(ref) is not None

    # ------------------------------------------------------------------ the engine's side

    def handle_timer(self, uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        """Engine entry point: one due timer (see ``service.timers``)."""
        fire(uow, timer, now, pinned=self.book.pinned, overrides=self.overrides_in_force(uow))

    def record_sent(
        self,
        uow: UnitOfWork,
        escalation_id: int | None,
        *,
        channel: str,
        to: str,
        audience: str,
        template: str | None,
        at: datetime,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Called by the outbox delivery step once a message has gone out (the outbox row's
        foreign key guarantees its escalation exists)."""
        if escalation_id is None:
            return
        uow.timeline.append(
            escalation_id,
            at=at,
            actor=SYSTEM,
            kind=EventKind.notification_sent.value,
            data={
                "channel": channel,
                "to": to,
                "audience": audience,
                "template": template,
                **(extra or {}),
            },
        )
