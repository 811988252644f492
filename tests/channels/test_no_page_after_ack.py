"""Property: after an acknowledgement no page arrives, whatever the ladder (steps,
channels, repeats), the moment of the acknowledgement, and crashes of the delivering
process between sending and recording. Pages queued before the acknowledgement that
had not gone out are cancelled by the outbox step; ladder steps skip; a page delivered
just before a crash and re-claimed after the acknowledgement is not sent again. Nothing
is lost: every message ends sent, cancelled or undeliverable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalade.clock import VirtualClock
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.service.delivery import tell_who_took_it
from escalade.service.wiring import escalation_engine
from escalade.store import OutboxMessage, OutboxState
from escalade.store.memory import MemoryStore

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CHANNELS = ["email", "chat", "sms", "pagerduty", "webhook", "opsgenie"]
WHO = ["{person: ana}", "{person: bo}", "{team: ops}", "{owner: true}"]


class Crash(BaseException):
    """The delivering process dies (not an ``Exception``: nothing catches it)."""


class CrashingChannel:
    """Delivers (records the arrival time) and dies after the n-th send of each plan."""

    def __init__(self, clock: VirtualClock, crash_after: list[int]) -> None:
        self.clock = clock
        self.plan = list(crash_after)
        self.count = 0
        self.arrived: list[tuple[datetime, OutboxMessage]] = []

    def send(self, message: OutboxMessage) -> None:
        self.arrived.append((self.clock.now(), message))
        self.count += 1
        if self.plan and self.count >= self.plan[0]:
            self.plan.pop(0)
            self.count = 0
            raise Crash()


@st.composite
def ladders(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 4))
    afters = sorted(draw(st.lists(st.integers(0, 90), min_size=n, max_size=n, unique=True)))
    steps = []
    for after in afters:
        who = draw(st.sampled_from(WHO))
        channel = draw(st.sampled_from(CHANNELS))
        unless = draw(st.sampled_from(["[acknowledged]", "[acknowledged, resolved]"]))
        steps.append(
            f"      - {{after: {after}m, notify: [{who}], channel: {channel}, unless: {unless}}}"
        )
    repeat = draw(st.integers(0, 2))
    return f"  - id: l\n    repeat: {repeat}\n    steps:\n" + "\n".join(steps)


POLICY = """
id: prop
people:
  - {id: ana, contacts: {email: ana@example.com, sms: "+15550001"}}
  - {id: bo, contacts: {email: bo@example.com}}
teams: [{id: ops, contacts: {chat: "#ops", email: ops@example.com}}]
priorities: [{id: P1, ladder: l, notify: post}]
ladders:
%s
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
"""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ladder=ladders(),
    ack_after=st.integers(1, 4 * 3600),  # seconds after the start (never the same instant)
    crash_after=st.lists(st.integers(1, 4), max_size=4),
    by=st.sampled_from(["ana", "bo", "cy"]),
)
def test_no_page_arrives_after_an_acknowledgement(
    ladder: str, ack_after: int, crash_after: list[int], by: str
) -> None:
    clock = VirtualClock(T0)
    service = EscalationService(MemoryStore(), clock)
    service.apply_policy(policy_from_text(POLICY % ladder, "prop.yaml"))
    channel = CrashingChannel(clock, crash_after)
    engine = escalation_engine(service, channel)
    service.create(EscalationInput(subject="Checkout down"), ref="OUT-1")
    ack_at = T0 + timedelta(seconds=ack_after)
    acked = False
    end = T0 + timedelta(hours=8)
    while True:
        if not acked and clock.now() >= ack_at:
            with service.store.unit_of_work() as uow:
                esc = service.act("OUT-1", "acknowledge", by=by, uow=uow)
                tell_who_took_it(uow, esc, by, clock.now())
                uow.commit()
            acked = True
        try:
            engine.run_until_idle(clock.now())
        except Crash:
            continue  # a new process picks up where the dead one left its leases
        due = engine.next_due()
        nxt = [t for t in (due, None if acked else ack_at) if t is not None]
        if not nxt or min(nxt) > end:
            break
        clock.advance(max(min(nxt) - clock.now(), timedelta(0)))

    assert acked
    late = [
        (at, m.key)
        for at, m in channel.arrived
        if at >= ack_at and m.audience != "customer" and not m.payload.get("after_ack")
    ]
    assert late == []
    with service.store.unit_of_work() as uow:
        states = {m.state for m in uow.outbox.find()}
    assert states <= {OutboxState.sent, OutboxState.cancelled, OutboxState.failed}
