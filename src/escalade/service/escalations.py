"""``EscalationService``: the one door to the use cases. Each public method runs its use
case in a unit of work of its own (or the caller's, given as ``uow``) and commits it."""

from __future__ import annotations

import random
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
from escalade.service.policies import ActivePolicy, PolicyBook
from escalade.service.timers import fire
from escalade.store import ConcurrentUpdate, Store, TransientConflict, UnitOfWork
from escalade.store.rows import EscalationRow, TimerRow

T = TypeVar("T")
RETRIES = 5
"""Attempts of a use case whose unit of work lost a race before the error is raised."""


@dataclass
class EscalationService:
    store: Store
    clock: Clock
    overrides: dict[str, list[Override]] = field(default_factory=dict)
    book: PolicyBook = field(default_factory=PolicyBook)
    wake: Callable[[], None] | None = None
    """Told after each unit of work the service commits itself (the in-process engine's
    ``wake``: it runs a pass only if the work made something due sooner than it planned)."""

    def __post_init__(self) -> None:
        self._create = Create(self.book, self.clock)
        self._act = Act(self.book)
        self._alert = ReceiveAlert(self.book, self.clock, self._create, self._act)
        self._activity = RecordActivity(self.book, self.clock, self._create)

    @property
    def active(self) -> ActivePolicy | None:
        """The active policy version and its router (None before ``apply_policy``)."""
        return self.book.active

    @contextmanager
    def _effects(self, uow: UnitOfWork | None) -> Iterator[Effects]:
        if uow is not None:
            yield Effects(uow, self.overrides)
            return
        with self.store.unit_of_work() as fresh:
            yield Effects(fresh, self.overrides)
            fresh.commit()

    def _run(self, uow: UnitOfWork | None, use_case: Callable[[Effects], T]) -> T:
        """Run a use case in the caller's unit of work, or in its own: then a unit of work
        that lost a race (an escalation changed under it, a deadlock or serialization
        failure the database resolved by giving it up) is run again from the start."""
        if uow is not None:
            return use_case(Effects(uow, self.overrides))
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
    ) -> EscalationRow:
        """A person (or the system) acts on an escalation; refused with a reason if invalid."""
        action = Action(action)
        now = self.clock.now()
        return self._run(
            uow,
            lambda fx: self._act(fx, ref, action, by=by, now=now, reason=reason, to=to, text=text),
        )

    def receive_alert(
        self, alert: AlertIn, *, uow: UnitOfWork | None = None
    ) -> EscalationRow | None:
        """Create, update or resolve the one escalation of an alert's deduplication key
        (in the caller's unit of work if given: the API commits its audit entry with it)."""
        self.book.require_active()
        return self._run(uow, lambda fx: self._alert(fx, alert))

    def record_activity(
        self, *, actor: str, action: str, count: int = 1, ref: str | None = None
    ) -> list[EscalationRow]:
        """Store product activity and fire the threshold triggers it crosses."""
        self.book.require_active()
        return self._run(
            None, lambda fx: self._activity(fx, actor=actor, action=action, count=count, ref=ref)
        )

    def _ref_taken(self, ref: str) -> bool:
        with self.store.unit_of_work(readonly=True) as uow:
            return uow.escalations.get_by_ref(ref) is not None

    # ------------------------------------------------------------------ the engine's side

    def handle_timer(self, uow: UnitOfWork, timer: TimerRow, now: datetime) -> None:
        """Engine entry point: one due timer (see ``service.timers``)."""
        fire(uow, timer, now, pinned=self.book.pinned, overrides=self.overrides)

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
