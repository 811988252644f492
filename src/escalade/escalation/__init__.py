"""The rules of escalations at run time. Pure: no store, no clock, no I/O.

The lifecycle (states and allowed actions), ladders and paths (rungs up and down), what an
escalation keeps from its policy (the typed snapshot) and the timers it plans, who hears of
what (messages, recipients, handling rules), triggers as decisions, and the names of timer
and timeline event kinds. The use cases that apply them live in ``escalade.service``.
"""
