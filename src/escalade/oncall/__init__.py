"""On-call schedules: who is on call at time t (rotations, layers, overrides), hand-offs.

Pure: a schedule from the policy, an instant and the overrides in force go in; person ids
come out. Local time lives only in the rotations' hand-off times.
"""

from escalade.oncall.schedule import (
    Override,
    Shift,
    TooManyShifts,
    layer_on_call,
    next_handoff,
    on_call,
    shifts,
)

__all__ = [
    "Override",
    "Shift",
    "TooManyShifts",
    "layer_on_call",
    "next_handoff",
    "on_call",
    "shifts",
]
