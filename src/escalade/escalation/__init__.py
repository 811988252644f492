"""Escalations at run time: the lifecycle (pure), what an escalation keeps from its policy
(snapshot), the timers it plans, and the service that stores and moves them."""
