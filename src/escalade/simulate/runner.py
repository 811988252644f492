"""Run a scenario: the real service and engine on a virtual clock and a throw-away database.

Between two scenario events the engine fires every timer that falls due, each at its own
due time; channels are captured, not sent. The output is the escalations' timelines,
merged in time order (ties in the order the engine did them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from escalade.batching import batch_gc
from escalade.bootstrap import bootstrap
from escalade.clock import VirtualClock
from escalade.escalation.lifecycle import Action
from escalade.oncall.schedule import Override as OncallOverride
from escalade.policy.loader import Problem
from escalade.routing.router import Router, RoutingInputError
from escalade.service import ActionRefused, AlertIn, EscalationService, NotFound
from escalade.service.wiring import RecordingChannel
from escalade.simulate import STORES
from escalade.simulate.scenario import (
    Act,
    Activity,
    Alert,
    Create,
    Event,
    Override,
    Scenario,
    ScenarioInvalid,
    _when,
)
from escalade.store import Store
from escalade.store.memory import MemoryStore


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def run_scenario(
    scenario: Scenario, router: Router, *, store: str = "memory", db_url: str | None = None
) -> list[dict[str, Any]]:
    """Everything that happened, as docs/contracts.md output objects, in time order.

    ``store`` is the throw-away database: ``memory`` (the default, the store's repositories
    over Python structures) or ``sqlite`` (an in-memory SQLite database through the same
    SQL as production). Both give the same output; the tests hold them to it. ``db_url``
    (a new, empty database) runs on that database instead and keeps it, e.g. to learn
    from with ``escalade triage train --from-db``.
    """
    if store not in STORES:
        raise ValueError(f"unknown simulate store {store!r}: use one of {', '.join(STORES)}")
    if db_url is not None:
        from escalade.store.db import SqlStore

        db: Store = SqlStore(db_url)
    elif store == "memory":
        db = MemoryStore()
    else:
        from escalade.store.db import SqlStore  # SQLAlchemy only when asked for

        db = SqlStore("sqlite://")
    try:
        with batch_gc():
            db.upgrade()
            return _run(db, scenario, router)
    finally:
        db.dispose()


def _run(store: Store, scenario: Scenario, router: Router) -> list[dict[str, Any]]:
    runtime = bootstrap(
        store=store,
        clock=VirtualClock(scenario.start),
        router=router,
        applied_by="simulate",
        channels=RecordingChannel(),
    )
    service, engine, clock = runtime.service, runtime.engine, runtime.clock
    assert engine is not None and isinstance(clock, VirtualClock)

    def advance_to(t: datetime) -> None:
        # One engine pass at each instant something falls due; the next due time (asked
        # anyway) says whether that pass left work at the same instant.
        while True:
            due = engine.next_due()
            if due is None or due > t:
                break
            clock.set(max(due, clock.now()))
            engine.run_once(clock.now())
        clock.set(max(t, clock.now()))

    for event in scenario.events:
        if event.at > scenario.until:
            break
        advance_to(event.at)
        try:
            _apply(service, event, scenario)
        except (ActionRefused, NotFound, RoutingInputError) as exc:
            raise ScenarioInvalid(
                [Problem(event.position, f"at {_iso(event.at)}: {exc}")]
            ) from None
    advance_to(scenario.until)
    return list(_output(store, scenario.until, show_messages="messages" in scenario.show))


def _apply(service: EscalationService, event: Event, scenario: Scenario) -> None:
    body = event.body
    if isinstance(body, Create):
        inp = body.model_dump(exclude={"ref"}, exclude_unset=True)
        from escalade.routing.models import EscalationInput

        service.create(EscalationInput.model_validate(inp), by="scenario", ref=body.ref)
    elif isinstance(body, Alert):
        service.receive_alert(
            AlertIn(
                source=body.source,
                key=body.key,
                status=body.status,
                severity=body.severity,
                summary=body.summary,
                description=body.description,
                ref=body.ref,
            ),
        )
    elif isinstance(body, Activity):
        service.record_activity(
            actor=body.actor, action=body.action, count=body.count, ref=body.ref
        )
    elif isinstance(body, Override):
        start = _when(body.from_, scenario.start)
        end = _when(body.to, scenario.start)
        service.overrides.setdefault(body.schedule, []).append(
            OncallOverride(person=body.user, start=start, end=end)
        )
    elif isinstance(body, Act):
        service.act(
            body.ref,
            Action(event.kind),
            by=body.by,
            reason=body.reason or body.resolution,
            to=body.to,
            text=body.text or body.resolution,
            category=body.category,
        )


def _output(
    store: Store, until: datetime, *, show_messages: bool = False
) -> Iterator[dict[str, Any]]:
    with store.unit_of_work(readonly=True) as uow:
        refs = {e.id: e.ref for e in uow.escalations.find(limit=1_000_000)}
        entries = uow.timeline.after(0, limit=10_000_000)
    entries.sort(key=lambda e: (e.at, e.id))
    for e in entries:
        if e.at > until:
            continue
        out: dict[str, Any] = {"at": _iso(e.at), "type": e.kind}
        if e.escalation_id is not None:  # ``ref`` only where it concerns an escalation
            out["ref"] = refs.get(e.escalation_id)
        out.update(e.data)
        text = out.pop("message", None)
        if show_messages and isinstance(text, dict):
            # ``show: [messages]``: the words each message went out with, and its template
            out["rendered_from"] = text.get("template")
            out["subject"] = text.get("subject")
            out["body"] = text.get("body")
        if e.reason and "reason" not in out:
            out["reason"] = e.reason
        yield out
