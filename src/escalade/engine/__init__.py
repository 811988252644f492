"""The engine: durable timers, the outbox, and the ordered list of steps that run them.

``Engine(store, clock, handlers).run_once(now)`` is one pass; ``run_forever`` is what
``serve`` and ``worker`` run; ``simulate`` uses ``run_until_idle`` with a virtual clock.
"""

from escalade.engine.config import EngineConfig
from escalade.engine.outbox import CapturingChannel, Channel, OutboxStep
from escalade.engine.registry import default_handlers, load_handlers
from escalade.engine.runner import Engine, Step, worker_id
from escalade.engine.timers import TimerHandler, TimerStep, schedule

__all__ = [
    "CapturingChannel",
    "Channel",
    "Engine",
    "EngineConfig",
    "OutboxStep",
    "Step",
    "TimerHandler",
    "TimerStep",
    "default_handlers",
    "load_handlers",
    "schedule",
    "worker_id",
]
