"""The composition root: the one place that builds Escalade's object graph.

``bootstrap`` turns settings (or a given store and clock) into a :class:`Runtime` — the
store, the clock, the escalation service with the policy applied, and the engine that
fires its timers and delivers its outbox. ``serve``, ``worker``, ``simulate`` and the
tests all build through it, so they run the same wiring; nothing connects at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from escalade.clock import Clock, SystemClock
from escalade.engine import Engine, EngineConfig
from escalade.engine.outbox import Channel
from escalade.escalation.kinds import SYSTEM
from escalade.routing.router import Router
from escalade.service import EscalationService
from escalade.service.wiring import LoggingChannel, escalation_engine
from escalade.settings import Settings
from escalade.store import Store

if TYPE_CHECKING:
    from escalade.store.db import SqlStore


@dataclass
class Runtime:
    """One running Escalade: what ``bootstrap`` built."""

    settings: Settings
    store: Store
    clock: Clock
    service: EscalationService
    engine: Engine | None
    policy_version: int | None

    def close(self) -> None:
        """Release the store's connections."""
        self.store.dispose()


def open_sql_store(settings: Settings) -> SqlStore:
    """The SQL store the settings name (SQLAlchemy is imported only here)."""
    from escalade.store.db import SqlStore

    return SqlStore.from_settings(settings)


def bootstrap(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    router: Router | None = None,
    applied_by: str = SYSTEM,
    engine: bool = True,
    channels: Channel | Mapping[str, Channel] | None = None,
    engine_config: EngineConfig | None = None,
    worker: str | None = None,
) -> Runtime:
    """Build the object graph.

    ``store`` defaults to the SQL store of ``settings`` (default: from the environment),
    ``clock`` to the wall clock. With a ``router`` its policy is applied (a new version if
    its content is new) and becomes the active one. With ``engine`` the engine is built:
    the escalation timers, then the outbox through ``channels`` (default: every message
    logged and recorded on the timeline).
    """
    settings = settings or Settings.from_env()
    store = store if store is not None else open_sql_store(settings)
    clock = clock or SystemClock()
    service = EscalationService(store, clock)
    version = None
    if router is not None:
        version = service.apply_policy(router.policy, router=router, by=applied_by)
    built = None
    if engine:
        built = escalation_engine(
            service,
            channels if channels is not None else LoggingChannel(),
            config=engine_config,
            worker=worker,
        )
        service.wake = built.wake
    return Runtime(settings, store, clock, service, built, version)
