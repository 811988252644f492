"""SLA clocks and business time: pure arithmetic on working hours and targets.

Owns ``calendar`` (:class:`BusinessCalendar`: is a calendar open, add and measure working
time, DST-correct), ``clocks`` (which targets and calendar apply to an escalation, deadlines,
pausable clock state, each with its reason) and ``localtime`` (local wall time ↔ UTC).
No database, HTTP or clock: time is always a parameter.
"""

from escalade.sla.calendar import BusinessCalendar, NoWorkingTime
from escalade.sla.clocks import (
    ClockName,
    ClockState,
    Deadline,
    SlaTarget,
    calendar_choice,
    calendar_for,
    deadline,
    deadlines,
    sla_targets,
)

__all__ = [
    "BusinessCalendar",
    "ClockName",
    "ClockState",
    "Deadline",
    "NoWorkingTime",
    "SlaTarget",
    "calendar_choice",
    "calendar_for",
    "deadline",
    "deadlines",
    "sla_targets",
]
