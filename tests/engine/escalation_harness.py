"""Drive the escalation service and the engine as ``simulate`` does, for the integration
tests: a virtual clock, the real store, every timer fired at its own due time, messages
captured by ``RecordingChannel``; ``notification.sent`` is written to the timeline as
each message is marked delivered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.engine import Engine, EngineConfig
from escalade.escalation.lifecycle import Action
from escalade.policy.models import Policy
from escalade.policy.validate import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.service.wiring import RecordingChannel
from escalade.store import EscalationRow, Store, TimelineEntry


def policy(text: str) -> Policy:
    return policy_from_text(text, "<test policy>")


@dataclass
class Harness:
    """One running Escalade: a service and an engine on ``store`` and a virtual clock."""

    store: Store
    clock: VirtualClock
    config: EngineConfig = field(default_factory=EngineConfig)
    service: EscalationService = field(init=False)
    channel: RecordingChannel = field(init=False)
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.channel = RecordingChannel()
        runtime = bootstrap(
            store=self.store, clock=self.clock, channels=self.channel, engine_config=self.config
        )
        self.service = runtime.service
        assert runtime.engine is not None
        self.engine = runtime.engine

    @classmethod
    def start(cls, store: Store, at: datetime, **kw: Any) -> Harness:
        return cls(store, VirtualClock(at), **kw)

    # -------------------------------------------------------------- driving

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def apply(self, p: Policy) -> int:
        return self.service.apply_policy(p, by="tests")

    def run(self) -> None:
        """Fire what is due now (and deliver the outbox)."""
        self.engine.run_until_idle(self.clock.now())

    def advance_to(self, t: datetime) -> None:
        """Move the clock to ``t``, firing every timer at its own due time on the way."""
        while True:
            due = self.engine.next_due()
            if due is None or due > t:
                break
            self.clock.set(max(due, self.clock.now()))
            self.run()
        self.clock.set(max(t, self.clock.now()))
        self.run()

    def advance(self, delta: timedelta) -> None:
        self.advance_to(self.clock.now() + delta)

    def create(self, ref: str, **inp: Any) -> EscalationRow:
        esc = self.service.create(EscalationInput.model_validate(inp), by="tests", ref=ref)
        self.run()
        return esc

    def act(self, ref: str, action: Action | str, by: str = "lena", **kw: Any) -> EscalationRow:
        esc = self.service.act(ref, action, by=by, **kw)
        self.run()
        return esc

    # -------------------------------------------------------------- reading

    def get(self, ref: str) -> EscalationRow:
        with self.store.unit_of_work() as uow:
            esc = uow.escalations.get_by_ref(ref)
        assert esc is not None, f"no escalation {ref}"
        return esc

    def timeline(self, ref: str, *kinds: str) -> list[TimelineEntry]:
        esc = self.get(ref)
        with self.store.unit_of_work() as uow:
            entries = uow.timeline.for_escalation(esc.id)
        return [e for e in entries if not kinds or e.kind in kinds]

    def kinds(self, ref: str) -> list[str]:
        return [e.kind for e in self.timeline(ref)]

    def sent(self, ref: str, audience: str | None = None) -> list[tuple[datetime, str, str]]:
        """``(at, channel, to)`` of every message recorded as sent for ``ref``."""
        return [
            (e.at, e.data["channel"], e.data["to"])
            for e in self.timeline(ref, "notification.sent")
            if audience is None or e.data["audience"] == audience
        ]

    def minutes_sent(self, ref: str, start: datetime) -> list[tuple[int, str]]:
        """``(minutes after start, to)`` of every internal message, in order."""
        return [
            (int((at - start).total_seconds() // 60), to)
            for at, _, to in self.sent(ref, "internal")
        ]


def only(entries: Iterable[TimelineEntry]) -> TimelineEntry:
    found = list(entries)
    assert len(found) == 1, [(e.kind, e.data) for e in found]
    return found[0]
