"""Delivery through the outbox: retries with backoff until the receiver answers, the
delivery log of every attempt, giving up (raised to the owner, next ladder step now),
undeliverable messages (nobody on call, no channel configured), pages cancelled by an
acknowledgement, who took it told to those paged, Prometheus counters and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from tests.channels.receivers import HttpReceiver
from tests.keys import bearer, issue_key

from escalade.api.app import create_app
from escalade.channels.links import ActionLinks
from escalade.channels.router import policy_channels
from escalade.clock import VirtualClock
from escalade.engine import CapturingChannel, Engine, EngineConfig
from escalade.engine.metrics import outcome_count
from escalade.policy import policy_from_text
from escalade.routing.models import EscalationInput
from escalade.service import EscalationService
from escalade.service.delivery import resolve_pages, tell_who_took_it
from escalade.service.wiring import escalation_engine
from escalade.settings import Settings
from escalade.store import Store, TimelineEntry

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

POLICY = """
id: outcomes
people:
  - {id: ana, contacts: {email: ana@example.com}}
  - {id: bo, contacts: {email: bo@example.com}}
teams: [{id: ops, contacts: {email: ops@example.com}}]
schedules:
  - id: future
    timezone: UTC
    layers: [{kind: weekly, start: "2030-01-07T09:00", people: [ana]}]
priorities: [{id: P1, ladder: page, notify: queue}, {id: P2}]
ladders:
  - id: page
    steps:
      - {after: 0s, notify: [{%(first)s}], channel: %(channel)s, unless: [acknowledged]}
      - {after: 1h, notify: [{person: bo}], channel: %(channel)s, unless: [acknowledged]}
categories: [{id: outage, owner: ops, priority: P1}]
routing: {default_category: outage}
channels:
  - {id: hook, type: webhook, carries: [webhook], url: "%(url)s/hook",
     signing_secret: {env: HOOK_SECRET}}
  - {id: pd, type: pagerduty, carries: [pagerduty], url: "%(url)s", routing_key: {env: PD_KEY}}
  - {id: ops-only, type: webhook, carries: [sms], when: {teams: [ops], priorities: [P2]},
     url: "%(url)s/sms", signing_secret: {env: HOOK_SECRET}}
"""


class Run:
    def __init__(
        self,
        store: Store,
        receiver: HttpReceiver,
        *,
        first: str = "person: ana",
        channel: str = "webhook",
        config: EngineConfig | None = None,
    ) -> None:
        text = POLICY.replace("[P9]", "[P1]") if channel == "sms-matching" else POLICY
        text = text % {"first": first, "channel": channel, "url": receiver.url}
        self.policy = policy_from_text(text, "outcomes.yaml")
        self.clock = VirtualClock(T0)
        self.service = EscalationService(store, self.clock)
        self.service.apply_policy(self.policy)
        self.fallback = CapturingChannel()  # the team's email notice
        channels = policy_channels(
            self.policy,
            fallback=self.fallback,
            links=ActionLinks(b"outcome-tests-key-0123456789", "https://esc.example"),
            environ={"HOOK_SECRET": "s", "PD_KEY": "k"},
        )
        self.engine: Engine = escalation_engine(self.service, channels, config=config)
        self.esc = self.service.create(EscalationInput(subject="Checkout down"), ref="OUT-1")

    def run_for(self, span: timedelta) -> None:
        """Run the engine at each due time up to ``span`` from now."""
        end = self.clock.now() + span
        while True:
            self.engine.run_until_idle(self.clock.now())
            due = self.engine.next_due()
            if due is None or due > end:
                break
            self.clock.advance(max(due - self.clock.now(), timedelta(0)))
        if end > self.clock.now():
            self.clock.advance(end - self.clock.now())
        self.engine.run_until_idle(self.clock.now())

    def log(self) -> list[tuple[str, str, str | None]]:
        with self.service.store.unit_of_work() as uow:
            return [
                (d.event.value, d.recipient, d.error)
                for d in uow.deliveries.for_escalation(self.esc.id)
            ]

    def timeline(self) -> list[TimelineEntry]:
        with self.service.store.unit_of_work() as uow:
            return uow.timeline.for_escalation(self.esc.id)


def test_a_receiver_that_fails_for_a_while_gets_the_page_once_later(
    store: Store, receiver: HttpReceiver
) -> None:
    receiver.fail_first = 2
    before = outcome_count("webhook", "hook", "after_retries")
    run = Run(store, receiver)
    run.run_for(timedelta(minutes=1))
    assert len(receiver.requests) == 1 and receiver.attempts == 3
    page = [e for e in run.log() if e[1] == "ana"]
    assert [e[0] for e in page] == [
        "queued", "failed", "retrying", "failed", "retrying", "sent",
    ]  # fmt: skip
    said = '{"error": "try later"}'
    assert page[1][2] == f"DeliveryError: webhook {receiver.url}/hook answered 503: {said}"
    assert outcome_count("webhook", "hook", "after_retries") == before + 1
    sent = [e for e in run.timeline() if e.kind == "notification.sent" and e.data["to"] == "ana"]
    assert len(sent) == 1


def test_a_page_that_gives_up_is_raised_to_the_owner_and_the_next_step_fires_now(
    store: Store, receiver: HttpReceiver
) -> None:
    receiver.fail_first = 10**6
    config = EngineConfig(max_attempts=2, retry_base=timedelta(seconds=10))
    before = outcome_count("webhook", "hook", "gave_up")
    run = Run(store, receiver, config=config)
    run.run_for(timedelta(minutes=5))
    ana = [e[0] for e in run.log() if e[1] == "ana"]
    assert ana == ["queued", "failed", "retrying", "failed", "gave_up"]
    kinds = [e.kind for e in run.timeline()]
    assert "notification.failed" in kinds and "notification.raised" in kinds
    assert "ladder.advanced" in kinds
    # step 2 (bo) paged minutes after the start instead of after an hour
    bo_queued = next(e for e in run.timeline() if e.kind == "ladder.advanced")
    assert bo_queued.at < T0 + timedelta(minutes=1)
    assert [e[0] for e in run.log() if e[1] == "bo"][:2] == ["queued", "failed"]
    # the owning team hears of it by email (carried by the fallback here)
    raised = [m for m in run.fallback.messages if m.payload.get("raised")]
    assert raised and raised[0].recipient == "ops@example.com"
    assert "could not reach ana by webhook" in raised[0].payload["body"]
    assert outcome_count("webhook", "hook", "gave_up") >= before + 1


def test_nobody_on_call_is_undeliverable_not_sent_and_the_next_step_fires(
    store: Store, receiver: HttpReceiver
) -> None:
    run = Run(store, receiver, first="schedule: future")
    run.run_for(timedelta(minutes=1))
    timeline = run.timeline()
    undeliverable = [e for e in timeline if e.kind == "notification.undeliverable"]
    assert len(undeliverable) == 1
    assert undeliverable[0].reason == "undeliverable: nobody on call: schedule:future"
    assert not [
        e for e in timeline if e.kind == "notification.sent" and e.data["to"] == "schedule:future"
    ]
    assert ("undeliverable", "schedule:future", "nobody on call: schedule:future") in run.log()
    assert "ladder.advanced" in [e.kind for e in timeline]
    assert [r.json()["recipient"] for r in receiver.requests] == ["bo"]


def test_a_message_no_instance_takes_is_logged_undeliverable(
    store: Store, receiver: HttpReceiver
) -> None:
    run = Run(store, receiver, channel="sms")  # the sms instance is for priority P2 only
    run.run_for(timedelta(minutes=1))
    [event] = [e for e in run.log() if e[1] == "ana" and e[0] != "queued"]
    assert event == (
        "undeliverable",
        "ana",
        "no channel instance carries 'sms' to 'ana' (team ops, priority P1, audience internal)",
    )
    assert receiver.requests == []


def test_an_acknowledgement_cancels_queued_pages_and_tells_who_was_paged(
    store: Store, receiver: HttpReceiver
) -> None:
    receiver.status = 202
    run = Run(store, receiver, channel="pagerduty")
    run.run_for(timedelta(seconds=1))
    [page] = receiver.requests
    # step 2 is due in an hour; queue it now, then acknowledge before it is delivered
    run.clock.advance(timedelta(hours=1))
    run.engine.steps[0].run(run.clock.now(), run.service.store)  # timers only, no outbox
    run.clock.advance(timedelta(seconds=5))
    # the acknowledge use case itself tells those paged (a second telling adds nothing)
    esc = run.service.act("OUT-1", "acknowledge", by="bo")
    with run.service.store.unit_of_work() as uow:
        [told] = [
            e.data["messages"]
            for e in uow.timeline.for_escalation(esc.id)
            if e.kind == "notification.acknowledgement_told"
        ]
        assert tell_who_took_it(uow, esc, "bo", run.clock.now()) == 0
    assert told == 2  # ana's page (a PagerDuty acknowledge) and the team's email notice
    run.run_for(timedelta(minutes=1))
    notices = [m for m in run.fallback.messages if m.payload.get("after_ack")]
    assert [(m.recipient, m.payload["subject"]) for m in notices] == [
        ("ops@example.com", "OUT-1 acknowledged by bo")
    ]
    docs = [r.json() for r in receiver.requests]
    assert [d["event_action"] for d in docs] == ["trigger", "acknowledge"]
    assert docs[1]["dedup_key"] == page.json()["dedup_key"]
    assert ("cancelled", "bo", "OUT-1 was acknowledged by bo before this message went out") in (
        run.log()
    )
    # resolving closes the incident in PagerDuty too, by the page's dedup_key
    esc = run.service.act("OUT-1", "resolve", by="bo")  # the resolve use case closes pages
    with run.service.store.unit_of_work() as uow:
        assert resolve_pages(uow, esc, "bo", run.clock.now()) == 0  # queued once already
    run.run_for(timedelta(minutes=1))
    last = receiver.requests[-1].json()
    assert (last["event_action"], last["dedup_key"]) == ("resolve", page.json()["dedup_key"])


def test_deliveries_and_metrics_over_http(store: Store, receiver: HttpReceiver) -> None:
    run = Run(store, receiver)
    run.run_for(timedelta(minutes=1))
    app = create_app(Settings(), run.policy, None, run.clock, service=run.service)
    # the delivery log and /metrics need a key with the 'read' scope
    assert TestClient(app).get("/v1/escalations/OUT-1/deliveries").status_code == 401
    assert TestClient(app).get("/metrics").status_code == 401
    client = TestClient(app, headers=bearer(issue_key(store, "read")))
    answer = client.get("/v1/escalations/OUT-1/deliveries")
    assert answer.status_code == 200
    rows = answer.json()["deliveries"]
    ana = [(r["event"], r["channel"], r["instance"]) for r in rows if r["to"] == "ana"]
    assert ana == [("queued", "webhook", None), ("sent", "webhook", "hook")]
    assert client.get("/v1/escalations/NOPE/deliveries").status_code == 404
    metrics = client.get("/metrics").text
    assert (
        'escalade_notifications_total{channel="webhook",instance="hook",outcome="first_try"}'
        in (metrics)
    )
